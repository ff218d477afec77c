import { pipeline, type Duplex } from 'node:stream'
import type { GatewayResponse, HeaderMap } from '../plugins/contract.ts'

/** What the gateway calls on a plugin's body stream (through pipe and pipeline too). */
const DUPLEX_METHODS = ['on', 'once', 'off', 'write', 'end', 'pipe', 'pause', 'resume', 'destroy'] as const

/** Refuses, in the hook that passes it, what is not a stream: the plugin's failure, answered before any byte. */
export function assertDuplex (stream: unknown, method: string): void {
  for (const m of DUPLEX_METHODS) {
    if (typeof (stream as Record<string, unknown> | null | undefined)?.[m] !== 'function') throw new TypeError(`${method} takes a Duplex stream (a Transform, say): this has no ${m}()`)
  }
}

/** Refuses a stream already in `chain`: piped into itself, it loops for ever (or V8 aborts). */
export function assertNotChained (stream: Duplex, chain: readonly Duplex[] | undefined, method: string): void {
  if (chain?.includes(stream) === true) throw new TypeError(`${method} was given a stream already in the body's chain: each stream goes in once`)
}

/** A response whose body goes out in whatever length it has (chunked over HTTP/1.1): nothing to hold it to. */
export const UNCHECKED = -1
/** A response that carries no body (HEAD, 204, 304): what its streams put out is dropped. */
export const NO_BODY = -2

/** The response as response-phase plugins see and change it. */
export class ResponseState implements GatewayResponse {
  status: number
  readonly headers: HeaderMap
  readonly fromUpstream: boolean
  readonly closeDelimited: boolean
  readonly streams: Duplex[] = []
  /** The pipeline position of the last hook that changed the framing (status, content-length, streams), for an error naming it; -1: none. */
  framer = -1
  /** Once the head is decided: the body bytes its Content-Length declares, UNCHECKED or NO_BODY (see Exchange #frame). */
  declared = UNCHECKED
  /** A plugin reply's Buffer body, or the one a response hook put in its place. */
  #body: Buffer | undefined

  constructor (status: number, headers: HeaderMap, fromUpstream: boolean, body?: Buffer, closeDelimited = false) {
    this.status = status
    this.headers = headers
    this.fromUpstream = fromUpstream
    this.closeDelimited = closeDelimited
    this.#body = body
  }

  get replyBody (): Buffer | undefined {
    return this.streams.length === 0 ? this.#body : undefined
  }

  set replyBody (body: Buffer | undefined) {
    if (this.replyBody === undefined || !Buffer.isBuffer(body)) throw new TypeError('replyBody replaces a reply\'s Buffer body with another, before any pipeThrough')
    this.#body = body
  }

  /** What the reply sends into the streams: `body`, or what a response hook put in its place. */
  sentBody<B extends string | Buffer | undefined> (body: B): B | Buffer {
    return this.#body ?? body
  }

  /** Records hook `position` as the framer if it changed what the head says of the body since `streams`, `length` and `status`. */
  noteFramer (position: number, streams: number, length: unknown, status: number): void {
    if (this.streams.length !== streams || this.headers['content-length'] !== length || this.status !== status) this.framer = position
  }

  pipeThrough (stream: Duplex): void {
    assertDuplex(stream, 'pipeThrough')
    assertNotChained(stream, this.streams, 'pipeThrough')
    this.streams.push(stream)
  }

  /** Headers Node accepts: plugins may have set some to undefined to remove them (copied only then). */
  definedHeaders (): Record<string, string | string[]> {
    const h = this.headers
    for (const k in h) {
      if (h[k] !== undefined) continue
      const out: Record<string, string | string[]> = {}
      for (const name in h) { const v = h[name]; if (v !== undefined) out[name] = v }
      return out
    }
    return h as Record<string, string | string[]>
  }

  /**
   * Where body chunks go: the first added stream, chained to the others (the exchange links the
   * last to the client). `onFailure` hears of every stream's errors, also of those the chain gives
   * them when another fails or is destroyed.
   */
  sink (onFailure: (err: Error) => void): Duplex {
    for (const s of this.streams) s.on('error', onFailure)
    if (this.streams.length > 1) pipeline(this.streams, () => {})
    return this.streams[0] as Duplex
  }
}
