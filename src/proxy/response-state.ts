import { pipeline, type Duplex } from 'node:stream'
import type { GatewayResponse, HeaderMap } from '../plugins/contract.ts'
import { describeThrown } from '../plugins/thrown.ts'

/** What the gateway calls on a plugin's body stream (through pipe and pipeline too). */
const DUPLEX_METHODS = ['on', 'once', 'off', 'write', 'end', 'pipe', 'pause', 'resume', 'destroy'] as const

/** Refuses, in the hook that passes it, what is not a stream: the plugin's failure, answered before any byte. */
function assertDuplex (stream: unknown, method: string): void {
  for (const m of DUPLEX_METHODS) {
    if (typeof (stream as Record<string, unknown> | null | undefined)?.[m] !== 'function') throw new TypeError(`${method} takes a Duplex stream (a Transform, say): this has no ${m}()`)
  }
}

/** Refuses a stream already in `chain`: piped into itself, it loops for ever (or V8 aborts). */
function assertNotChained (stream: Duplex, chain: readonly Duplex[] | undefined, method: string): void {
  if (chain?.includes(stream) === true) throw new TypeError(`${method} was given a stream already in the body's chain: each stream goes in once`)
}

/**
 * What a plugin's body stream threw from its own code (a transform, a write, a read), or failed
 * with that Node could not handle (a revoked Proxy): the plugin's failure (500 plugin_error).
 */
export class StreamThrew extends Error {
  readonly thrown: unknown
  constructor (thrown: unknown) {
    super(`a body stream threw: ${describeThrown(thrown)}`)
    this.thrown = thrown
  }
}

/** On a plugin's response body stream: the pipeline position of the plugin whose hook added it. */
const PLUGIN = Symbol('plugin')

/** The pipeline position of the plugin that added a response body stream (-1: not known). */
export function streamPlugin (stream: Duplex): number {
  return (stream as Duplex & { [PLUGIN]?: number })[PLUGIN] ?? -1
}

type Callback = (err?: unknown) => void
/** The methods of a stream Node calls (a Transform's _transform through _write). */
interface StreamCode {
  destroy: (err: Error) => void
  _write: (chunk: unknown, enc: BufferEncoding, cb: Callback) => void
  _writev?: ((chunks: unknown[], cb: Callback) => void) | null
  _read: (size: number) => void
}

/** `v instanceof C`, false where that throws (a plugin's error may be a Proxy whose traps throw, or a revoked one). */
export function isA<T> (v: unknown, C: abstract new (...args: never[]) => T): v is T {
  try {
    return v instanceof C
  } catch {
    return false
  }
}

/**
 * Node calls a stream's _write (_transform) from whatever wrote to it (the client request's
 * 'data' event, undici's onData, the stream before it), and _read from whatever reads it: a throw
 * there, or a callback given an error Node throws on (reading its stack), would reach those
 * callers, or end the process from a timer. Guarded per stream (a plugin's only), each failing
 * the stream with StreamThrew instead.
 */
function guard (stream: Duplex): void {
  const s = stream as unknown as StreamCode
  const { _write: write, _writev: writev, _read: read } = s
  // Node passes the same callback to every write (the stream's onwrite): guarded once.
  let onwrite: Callback | undefined
  let safe: Callback | undefined
  const guarded = (cb: Callback): Callback => {
    if (cb !== onwrite) { onwrite = cb; safe = safeCallback(s, cb) }
    return safe as Callback
  }
  s._write = function (chunk, enc, cb) {
    try { write.call(this, chunk, enc, guarded(cb)) } catch (err) { threw(this, err) }
  }
  if (typeof writev === 'function') {
    s._writev = function (chunks, cb) {
      try { writev.call(this, chunks, guarded(cb)) } catch (err) { threw(this, err) }
    }
  }
  s._read = function (size) {
    try { read.call(this, size) } catch (err) { threw(this, err) }
  }
  // Not _final: Node catches a throw there (a transform's flush) itself, and a Transform tells its own _final by identity.
}

function safeCallback (stream: StreamCode, cb: Callback): Callback {
  return (err?: unknown) => {
    try { cb(err) } catch (thrown) { threw(stream, err ?? thrown) }
  }
}

function threw (stream: StreamCode, thrown: unknown): void {
  stream.destroy(new StreamThrew(thrown))
}

/** A plugin's body stream, checked and guarded: see assertDuplex, assertNotChained, guard. */
export function pluginStream (stream: Duplex, chain: readonly Duplex[] | undefined, method: string): void {
  assertDuplex(stream, method)
  assertNotChained(stream, chain, method)
  guard(stream)
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
  /** A plugin reply's Buffer body, or the one a response hook put in its place (replyBody, replaceBody). */
  #body: Buffer | undefined

  constructor (status: number, headers: HeaderMap, fromUpstream: boolean, body?: Buffer, closeDelimited = false) {
    this.status = status
    this.headers = headers
    this.fromUpstream = fromUpstream
    this.closeDelimited = closeDelimited
    this.#body = body
  }

  /** An upstream's response whose body a hook replaced (replaceBody): the upstream's is not sent. */
  get replaced (): boolean {
    return this.fromUpstream && this.#body !== undefined
  }

  replaceBody (body: Buffer): void {
    if (!Buffer.isBuffer(body)) throw new TypeError('replaceBody takes a Buffer')
    // Streams added so far were the replaced body's.
    for (const s of this.streams.splice(0)) s.destroy()
    this.#body = body
    this.headers['content-length'] = String(body.length)
  }

  get replyBody (): Buffer | undefined {
    return this.streams.length === 0 ? this.#body : undefined
  }

  set replyBody (body: Buffer | undefined) {
    if (this.replyBody === undefined || !Buffer.isBuffer(body)) throw new TypeError('replyBody replaces a reply\'s Buffer body with another, before any pipeThrough')
    this.#body = body
  }

  /** What the reply (or a replaced upstream response) sends into the streams: `body`, or what a response hook put in its place. */
  sentBody<B extends string | Buffer | undefined> (body: B): B | Buffer {
    return this.#body ?? body
  }

  /**
   * Records hook `position` as the framer if it changed what the head says of the body since
   * `streams`, `length` and `status`; and as the plugin of the streams it added.
   */
  noteFramer (position: number, streams: number, length: unknown, status: number): void {
    if (this.streams.length !== streams || this.headers['content-length'] !== length || this.status !== status) this.framer = position
    for (const s of this.streams) (s as Duplex & { [PLUGIN]?: number })[PLUGIN] ??= position
  }

  pipeThrough (stream: Duplex): void {
    pluginStream(stream, this.streams, 'pipeThrough')
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
   * last to the client). `onFailure` hears of every stream's errors, the failing stream's first,
   * then those the chain gives the others.
   */
  sink (onFailure: (err: Error, stream: Duplex) => void): Duplex {
    for (const s of this.streams) s.on('error', err => { onFailure(err, s) })
    if (this.streams.length > 1) pipeline(this.streams, () => {})
    return this.streams[0] as Duplex
  }
}
