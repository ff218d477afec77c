import { LRUCache } from 'lru-cache'

type Copies = Partial<Record<string, Buffer>>
/** Per coding: the room a reply copying it now holds, or `too-large`. */
type Claims = Partial<Record<string, number | 'too-large'>>

/**
 * Encoded copies of reply bodies that are sent again and again (a cache's stored responses, the
 * same Buffer on every hit): each is encoded once per coding sent (`identity`: a stored encoded
 * body, decoded) and then sent from memory, not encoded anew for every hit. A body is copied from
 * its second reply on, so that bodies replied once cost nothing here, by one reply at a time, at
 * its client's pace. Bounded in bytes, counting the body each copy keeps alive.
 */
export class EncodedCopies {
  readonly #copies: LRUCache<Buffer, Copies>
  readonly #seen = new WeakSet<Buffer>()
  /**
   * Per body, the codings a reply is copying now (one at a time: a burst of slow clients would each
   * hold a copy), with the room each holds, or whose copy was too large to keep (never tried again:
   * every hit would try).
   */
  readonly #busy = new WeakMap<Buffer, Claims>()
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

  /**
   * Claims the copy of `body` in `coding` for a reply: the bytes the copy may take to be kept (with
   * the body, its other copies and the room held by those under way, within maxBytes), held until
   * `copied`; 0 when none is to be taken: the body not replied before (it is remembered as replied
   * now), another reply copying it, its copy found too large before, or no room left.
   */
  claim (body: Buffer, coding: string): number {
    if (!this.#seen.has(body)) {
      this.#seen.add(body)
      return 0
    }
    const busy = this.#busy.get(body)
    if (busy?.[coding] !== undefined) return 0
    let used = body.length
    const copies = this.#copies.peek(body)
    for (const c in copies) used += (copies[c] as Buffer).length
    // The room copies under way hold counts: two that each fit alone can be over maxBytes together,
    // which lru-cache answers by dropping the body's entry, every copy with it.
    for (const c in busy) if (typeof busy[c] === 'number') used += busy[c]
    if (used >= this.maxBytes) return 0
    const room = this.maxBytes - used
    if (busy === undefined) this.#busy.set(body, { [coding]: room })
    else busy[coding] = room
    return room
  }

  /** The end of a claim: the copy made (undefined: none), and whether it outgrew its room. */
  copied (body: Buffer, coding: string, copy: Buffer | undefined, tooLarge: boolean): void {
    const busy = this.#busy.get(body) as Claims
    if (tooLarge) busy[coding] = 'too-large'
    else delete busy[coding]
    if (copy !== undefined) this.set(body, coding, copy)
  }

  set (body: Buffer, coding: string, copy: Buffer): void {
    this.#copies.set(body, { ...this.#copies.get(body), [coding]: copy })
    this.#report(this.#copies.calculatedSize)
  }
}
