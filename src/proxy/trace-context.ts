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
  /**
   * Whether a tracing plugin records the trace, once one has decided (the opentelemetry plugin: as
   * its server span starts, in onFinished at the latest); undefined while none has. One it does not
   * record is no exemplar of the latency histogram: the exemplar would lead to no trace.
   */
  sampled: boolean | undefined
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
    return { traceId: m[2] as string, spanId: randomHex(8), parentSpanId: m[3], flags: `0${parseInt(m[4] as string, 16) & KNOWN_FLAGS}`, sampled: undefined }
  }
  return { traceId: randomHex(16), spanId: randomHex(8), parentSpanId: undefined, flags: '01', sampled: undefined }
}

/** The traceparent header that makes the gateway's span the parent of the upstream's. */
export const traceparent = (t: TraceContext): string => `00-${t.traceId}-${t.spanId}-${t.flags}`

// W3C Trace Context 3.3.1: a member, key (simple, or tenant@system) = value (printable ASCII but , and
// =, no trailing space), with optional white space (space, tab) around it.
const TRACESTATE_MEMBER = /^[ \t]*(([a-z][a-z0-9_*/-]{0,255}|[a-z0-9][a-z0-9_*/-]{0,240}@[a-z][a-z0-9_*/-]{0,13})=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])[ \t]*$/
const EMPTY_MEMBER = /^[ \t]*$/
const TRACESTATE_MEMBERS = 32
const TRACESTATE_CHARS = 512
const TRACESTATE_LONG_MEMBER = 128

/**
 * The tracestate to send on (its header lines joined, as W3C Trace Context allows), within the
 * spec's bounds: at most 32 members, the first ones; over 512 characters, members over 128
 * characters are dropped first, then members from the end. Empty members and white space around
 * members go. Undefined for one with an invalid member or a key twice (the spec: an invalid
 * tracestate is not propagated), or with no member.
 */
export function boundedTracestate (header: string | readonly string[]): string | undefined {
  const members: string[] = []
  const keys = new Set<string>()
  for (const raw of (typeof header === 'string' ? header : header.join(',')).split(',')) {
    const m = TRACESTATE_MEMBER.exec(raw)
    if (m === null) {
      if (EMPTY_MEMBER.test(raw)) continue
      return undefined
    }
    if (keys.has(m[2] as string)) return undefined
    keys.add(m[2] as string)
    if (members.length < TRACESTATE_MEMBERS) members.push(m[1] as string)
  }
  // The members and a comma between each two.
  let length = members.reduce((n, member) => n + member.length, 0) + members.length - 1
  for (let i = members.length - 1; i >= 0 && length > TRACESTATE_CHARS; i--) {
    if ((members[i] as string).length > TRACESTATE_LONG_MEMBER) length -= (members.splice(i, 1)[0] as string).length + 1
  }
  while (length > TRACESTATE_CHARS) length -= (members.pop() as string).length + 1
  return members.length === 0 ? undefined : members.join(',')
}
