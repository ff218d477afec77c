import { Transform, type TransformCallback } from 'node:stream'
import { RequestRejected } from '../../src/index.ts'
import { refusal } from '../shared/refusal.ts'

/** Passes a body through until it exceeds `max` bytes, then refuses the request (413). */
export class BodyLimit extends Transform {
  readonly #max: number
  readonly #requestId: string
  readonly #onRefused: () => void
  #seen = 0

  constructor (max: number, requestId: string, onRefused: () => void) {
    super()
    this.#max = max
    this.#requestId = requestId
    this.#onRefused = onRefused
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen <= this.#max) { cb(null, chunk); return }
    this.#onRefused()
    cb(new RequestRejected('request body too large', refusal(413, 'body_too_large', `the request body is larger than ${this.#max} bytes`, this.#requestId, true)))
  }
}

/** Sum of the lengths of header names and values as received. */
export function headerBytes (raw: readonly string[]): number {
  let n = 0
  for (const s of raw) n += s.length
  return n
}
