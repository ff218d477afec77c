import pino, { type Logger } from 'pino'
import { isHttp2 } from '../server/http2.ts'

/** What one access-log line says about a request. */
export interface AccessLogFields {
  target: string | undefined
  /** Set only when the request was retried. */
  tries: number | undefined
  method: string
  path: string
  /** HTTP/1.1, HTTP/1.0 or HTTP/2 (see protocolOf); another version only on a refused request. */
  protocol: string
  status: number
  durationMs: number
  bytes: number
  requestId: string
  clientIp: string
  /** The consumer's id, once an auth plugin recognised one. */
  consumer: string | undefined
  /** W3C trace id, to find the request's spans and the upstream's logs. */
  traceId: string
  /** Why the gateway cut the request short (a client timeout, a broken upstream body). */
  error?: string | undefined
  reqHeaders?: unknown
  resHeaders?: unknown
}

interface LineSink { write (line: string): unknown }

const INFO = 30
const HTTP2 = 'HTTP/2'
const HTTP11 = 'HTTP/1.1'
const HTTP10 = 'HTTP/1.0'

/**
 * The access log's `protocol` of a request: one of a few constant strings, so no allocation per
 * request. A version HTTP/1 cannot carry (`HTTP/2.0`, `HTTP/0.9` request lines, refused with 505) is logged as sent.
 */
export function protocolOf (req: { httpVersionMajor: number, httpVersionMinor: number }): string {
  if (req.httpVersionMajor === 1) return req.httpVersionMinor === 1 ? HTTP11 : HTTP10
  return isHttp2(req) ? HTTP2 : `HTTP/${req.httpVersionMajor}.${req.httpVersionMinor}`
}
const q = JSON.stringify

/**
 * The access log's `consumer`: the id of the consumer a plugin set, as text. A JS plugin may set
 * anything: an id read from a database as a BigInt or a number is shown as its digits; one that is
 * not text (a Symbol, an object), or whose getter throws, is left out, never written as it is
 * (JSON.stringify throws on a BigInt, and writes no JSON for a Symbol).
 */
export function consumerIdOf (consumer: { readonly id: unknown } | undefined): string | undefined {
  if (consumer === undefined) return undefined
  let id
  try {
    id = consumer.id
  } catch {
    return undefined
  }
  if (typeof id === 'string') return id
  return typeof id === 'bigint' || typeof id === 'number' ? String(id) : undefined
}

/**
 * One route's access log: a JSON line per request, what pino would write with createLogger's
 * formats (level, epoch time, the logger's bindings, the fields, msg), to the same destination so
 * that lines interleave with the rest of the log. Written by hand because it runs on every
 * request: no generic serializer, no redaction pass. Lines with headers (logging.headers) go
 * through pino itself, whose redaction they need.
 */
export class AccessLog {
  readonly #log: Logger
  readonly #sink: LineSink
  /** The bindings (pid, route, upstream), serialized once. */
  readonly #bindings: string

  constructor (log: Logger) {
    this.#log = log
    this.#sink = (log as unknown as Record<symbol, LineSink>)[pino.symbols.streamSym] as LineSink
    this.#bindings = (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? ''
  }

  write (f: AccessLogFields): void {
    if (this.#log.levelVal > INFO) return
    if (f.reqHeaders !== undefined || f.resHeaders !== undefined) { this.#log.info(f, 'request'); return }
    this.#sink.write(
      `{"level":30,"time":${Date.now()}${this.#bindings}` +
      (f.target === undefined ? '' : `,"target":${q(f.target)}`) +
      (f.tries === undefined ? '' : `,"tries":${f.tries}`) +
      `,"method":${q(f.method)},"path":${q(f.path)},"protocol":"${f.protocol}","status":${f.status},"durationMs":${f.durationMs},"bytes":${f.bytes}` +
      (f.error === undefined ? '' : `,"error":${q(f.error)}`) +
      `,"requestId":${q(f.requestId)},"clientIp":${q(f.clientIp)}` +
      (f.consumer === undefined ? '' : `,"consumer":${q(f.consumer)}`) +
      `,"traceId":"${f.traceId}"` +
      ',"msg":"request"}\n'
    )
  }
}
