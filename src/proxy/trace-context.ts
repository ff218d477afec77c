import { randomFillSync } from 'node:crypto'

/** W3C Trace Context of one request: the caller's trace, and the span the gateway adds to it. */
export interface TraceContext {
  readonly traceId: string
  /** The gateway's own span: the parent the upstream sees in its traceparent. */
  readonly spanId: string
  /** The caller's span, when the request came with a valid traceparent. */
  readonly parentSpanId: string | undefined
  /** Trace flags, two hex digits ('01': sampled, '02': random trace id); unknown bits zeroed. */
  readonly flags: string
}

// version-traceid-parentid-flags; later versions may append fields, which a version-00 reader ignores.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-|$)/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)
// The flags this version knows (sampled 0x01, random 0x02): the others MUST be zeroed when the
// header is sent on as this version, whatever version came in.
const KNOWN_FLAGS = 0x03

// Random bytes are drawn in batches: one getrandom call per 512 spans, not one per request.
const pool = Buffer.alloc(8192)
let offset = pool.length
function randomHex (bytes: number): string {
  if (offset + bytes > pool.length) { randomFillSync(pool); offset = 0 }
  const hex = pool.toString('hex', offset, offset + bytes)
  offset += bytes
  return hex
}

/**
 * The trace context for a request: continues the caller's trace when its traceparent is valid
 * (version 00 rules; ff and all-zero ids are invalid; unknown flags zeroed), else starts a new, sampled one.
 */
export function traceContext (incoming: string | string[] | undefined): TraceContext {
  const m = typeof incoming === 'string' ? TRACEPARENT.exec(incoming) : null
  if (m !== null && m[1] !== 'ff' && m[2] !== ZERO_TRACE && m[3] !== ZERO_SPAN && (m[1] !== '00' || m[5] === '')) {
    return { traceId: m[2] as string, spanId: randomHex(8), parentSpanId: m[3], flags: `0${parseInt(m[4] as string, 16) & KNOWN_FLAGS}` }
  }
  return { traceId: randomHex(16), spanId: randomHex(8), parentSpanId: undefined, flags: '01' }
}

/** The traceparent header that makes the gateway's span the parent of the upstream's. */
export const traceparent = (t: TraceContext): string => `00-${t.traceId}-${t.spanId}-${t.flags}`
