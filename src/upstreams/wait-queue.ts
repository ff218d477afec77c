/**
 * A request waiting for a free slot of a target. Linked in place (the exchange is its own node),
 * so that waiting allocates nothing and leaving the queue, when the client goes, is O(1).
 */
export interface Waiter {
  waitPrev: Waiter | undefined
  waitNext: Waiter | undefined
  /** Its turn has come: it is sent now. */
  admit (): void
}

/** First in, first out; a waiter that gives up leaves from wherever it is. */
export class WaitQueue {
  length = 0
  #head: Waiter | undefined
  #tail: Waiter | undefined

  push (w: Waiter): void {
    w.waitPrev = this.#tail
    w.waitNext = undefined
    if (this.#tail === undefined) this.#head = w
    else this.#tail.waitNext = w
    this.#tail = w
    this.length++
  }

  shift (): Waiter | undefined {
    const w = this.#head
    if (w !== undefined) this.remove(w)
    return w
  }

  remove (w: Waiter): void {
    if (w.waitPrev === undefined) this.#head = w.waitNext
    else w.waitPrev.waitNext = w.waitNext
    if (w.waitNext === undefined) this.#tail = w.waitPrev
    else w.waitNext.waitPrev = w.waitPrev
    w.waitPrev = w.waitNext = undefined
    this.length--
  }
}
