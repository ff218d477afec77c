import { Duplex } from 'node:stream'

/**
 * Passes the body on to the client as it comes and keeps a copy, up to `limit` bytes; past it the
 * copy is dropped (the client still gets everything). `done` gets the whole body, or undefined as
 * soon as it is too large (`tooLarge`), or when the stream broke. While it copies it takes the body
 * at its sender's pace, not the client's: a cache's requests waiting for this one's fetch
 * (collapsed) get the entry once the upstream has sent it, however slowly this client reads. What
 * it holds for the client then is the copy's own chunks (at most `limit` bytes), and once whole the
 * body made of them too, until the client has read them (about twice `limit`); past the limit the
 * client's pace rules again. `clientPace`: the client's pace all along, for a copy nobody waits
 * for (compress's encoded copies): a client that does not read holds no more than a stream does.
 */
export class Capture extends Duplex {
  #chunks: Buffer[] | undefined = []
  #size = 0
  readonly #limit: number
  readonly #clientPace: boolean
  #done: ((body: Buffer | undefined, tooLarge: boolean) => void) | undefined
  /** A write waiting for the client to read. */
  #waiting: (() => void) | undefined

  constructor (limit: number, done: (body: Buffer | undefined, tooLarge: boolean) => void, { clientPace = false } = {}) {
    super()
    this.#limit = limit
    this.#clientPace = clientPace
    this.#done = done
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    if (this.#chunks !== undefined) {
      this.#size += chunk.length
      // Past the limit, said at once: requests waiting for this copy (a cache's collapsed ones) go
      // their own way now, not when this client has read the rest.
      if (this.#size > this.#limit) this.#finish(undefined, true)
      else this.#chunks.push(chunk)
    }
    if (this.push(chunk) || (this.#chunks !== undefined && !this.#clientPace)) cb()
    else this.#waiting = cb
  }

  override _read (): void {
    const cb = this.#waiting
    this.#waiting = undefined
    cb?.()
  }

  override _final (cb: (error?: Error | null) => void): void {
    this.#finish(this.#chunks === undefined ? undefined : Buffer.concat(this.#chunks, this.#size))
    this.push(null)
    cb()
  }

  override _destroy (err: Error | null, cb: (error?: Error | null) => void): void {
    this.#finish(undefined)
    cb(err)
  }

  #finish (body: Buffer | undefined, tooLarge = false): void {
    const done = this.#done
    this.#done = undefined
    this.#chunks = undefined
    done?.(body, tooLarge)
  }
}

