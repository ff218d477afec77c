import { Transform, type TransformCallback } from 'node:stream'

/**
 * Passes the body on to the client as it comes and keeps a copy, up to `limit` bytes; past it the
 * copy is dropped (the client still gets everything). `done` gets the whole body, or undefined when
 * it was too large or the stream broke.
 */
export class Capture extends Transform {
  #chunks: Buffer[] | undefined = []
  #size = 0
  readonly #limit: number
  #done: ((body: Buffer | undefined) => void) | undefined

  constructor (limit: number, done: (body: Buffer | undefined) => void) {
    super()
    this.#limit = limit
    this.#done = done
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#chunks !== undefined) {
      this.#size += chunk.length
      if (this.#size > this.#limit) this.#chunks = undefined
      else this.#chunks.push(chunk)
    }
    cb(null, chunk)
  }

  override _flush (cb: TransformCallback): void {
    this.#finish(this.#chunks === undefined ? undefined : Buffer.concat(this.#chunks, this.#size))
    cb()
  }

  override _destroy (err: Error | null, cb: (error?: Error | null) => void): void {
    this.#finish(undefined)
    cb(err)
  }

  #finish (body: Buffer | undefined): void {
    const done = this.#done
    this.#done = undefined
    this.#chunks = undefined
    done?.(body)
  }
}

/** Drops what comes in (an empty 304, an error body) and sends `body` instead: a stored body replayed. */
export class Replay extends Transform {
  readonly #body: Buffer | undefined

  constructor (body: Buffer | undefined) {
    super()
    this.#body = body
  }

  override _transform (_chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void { cb() }

  override _flush (cb: TransformCallback): void { cb(null, this.#body) }
}
