import { LRUCache } from 'lru-cache'

type Copies = Partial<Record<string, Buffer>>

/**
 * Encoded copies of reply bodies that are sent again and again (a cache's stored responses, the
 * same Buffer on every hit): each is encoded once per coding sent (`identity`: a stored encoded
 * body, decoded) and then sent from memory, not encoded anew for every hit. A body is copied from its second reply on, so that bodies replied
 * once cost nothing here. Bounded in bytes, counting the body each copy keeps alive.
 */
export class EncodedCopies {
  readonly #copies: LRUCache<Buffer, Copies>
  readonly #seen = new WeakSet<Buffer>()
  readonly maxBytes: number
  /** Reports the bytes kept (a gauge's child). */
  readonly #report: (bytes: number) => void

  constructor (maxBytes: number, report: (bytes: number) => void) {
    this.maxBytes = maxBytes
    this.#report = report
    report(0)
    this.#copies = new LRUCache<Buffer, Copies>({
      maxSize: maxBytes,
      sizeCalculation: (copies, body) => Object.values(copies).reduce((n, c) => n + (c as Buffer).length, body.length)
    })
  }

  get (body: Buffer, coding: string): Buffer | undefined {
    return this.#copies.get(body)?.[coding]
  }

  /** Whether `body` was replied before (it is remembered as replied now). */
  repeated (body: Buffer): boolean {
    if (this.#seen.has(body)) return true
    this.#seen.add(body)
    return false
  }

  set (body: Buffer, coding: string, copy: Buffer): void {
    this.#copies.set(body, { ...this.#copies.get(body), [coding]: copy })
    this.#report(this.#copies.calculatedSize)
  }
}
