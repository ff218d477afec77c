import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** A span as the receiver decoded it from OTLP/HTTP JSON, attributes flattened. */
export interface ReceivedSpan {
  traceId: string
  spanId: string
  /** '' for a root span. */
  parentSpanId: string
  name: string
  /** OTLP SpanKind: 2 server, 3 client. */
  kind: number
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  status: number
  startNs: bigint
  endNs: bigint
  attributes: Record<string, unknown>
  resource: Record<string, unknown>
  /** The instrumentation scope's name. */
  scope: string
  /** OTLP span flags: trace flags, 0x100 "parent's remoteness known", 0x200 "parent remote". */
  flags: number
}

interface OtlpValue { stringValue?: string, intValue?: string | number, doubleValue?: number, boolValue?: boolean }
interface OtlpAttribute { key: string, value: OtlpValue }
interface OtlpSpan {
  traceId: string, spanId: string, parentSpanId?: string, name: string, kind: number,
  status?: { code?: number }, startTimeUnixNano: string | number, endTimeUnixNano: string | number, attributes?: OtlpAttribute[], flags?: number
}
interface OtlpRequest { resourceSpans: Array<{ resource?: { attributes?: OtlpAttribute[] }, scopeSpans: Array<{ scope?: { name?: string }, spans: OtlpSpan[] }> }> }

const value = (v: OtlpValue): unknown => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue
const flatten = (attributes: OtlpAttribute[] = []) => Object.fromEntries(attributes.map(a => [a.key, value(a.value)]))

/**
 * A small OTLP/HTTP receiver on a loopback port: accepts POST /v1/traces in JSON (what the
 * plugin's exporter sends), decodes the spans, answers 200 { partialSuccess: {} }. `mode` makes it
 * refuse exports (400) or hold them unanswered until release().
 */
export async function startOtlpReceiver () {
  const spans: ReceivedSpan[] = []
  const exports: IncomingHttpHeaders[] = []
  const held: ServerResponse[] = []
  let mode: 'accept' | 'refuse' | 'hold' = 'accept'
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(415).end(); return
      }
      exports.push(req.headers)
      if (mode === 'refuse') { res.writeHead(400, { 'content-type': 'application/json' }).end('{"code":3,"message":"refused by the test"}'); return }
      const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpRequest
      for (const rs of body.resourceSpans) {
        const resource = flatten(rs.resource?.attributes)
        for (const ss of rs.scopeSpans) {
          for (const s of ss.spans) {
            spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: s.kind,
              status: s.status?.code ?? 0,
              startNs: BigInt(s.startTimeUnixNano),
              endNs: BigInt(s.endTimeUnixNano),
              attributes: flatten(s.attributes),
              resource,
              scope: ss.scope?.name ?? '',
              flags: s.flags ?? 0
            })
          }
        }
      }
      if (mode === 'hold') { held.push(res); return }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    /** Headers of each export request received. */
    exports,
    setMode (m: typeof mode) { mode = m },
    release () { for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end('{}') },
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}
