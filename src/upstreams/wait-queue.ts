import type { Target } from './target.ts'

/** A node of a WaitQueue: linked in place, so that waiting allocates nothing and leaving, when the client goes, is O(1). */
export interface Linked<W> {
  waitPrev: W | undefined
  waitNext: W | undefined
}

/** A request waiting for a free slot of a target (the exchange is its own node). */
export interface Waiter extends Linked<Waiter> {
  /** Whether another target's free slot may take it (not a retry, which must avoid the targets it tried). */
  readonly movable: boolean
  /** Its turn has come: it is sent to `target` now (the one it waited for, or another with a free slot). */
  admit (target: Target): void
}

/** First in, first out; a waiter that gives up leaves from wherever it is. */
export class WaitQueue<W extends Linked<W> = Waiter> {
  length = 0
  #head: W | undefined
  #tail: W | undefined

  push (w: W): void {
    w.waitPrev = this.#tail
    w.waitNext = undefined
    if (this.#tail === undefined) this.#head = w
    else this.#tail.waitNext = w
    this.#tail = w
    this.length++
  }

  get first (): W | undefined { return this.#head }

  shift (): W | undefined {
    const w = this.#head
    if (w !== undefined) this.remove(w)
    return w
  }

  remove (w: W): void {
    if (w.waitPrev === undefined) this.#head = w.waitNext
    else w.waitPrev.waitNext = w.waitNext
    if (w.waitNext === undefined) this.#tail = w.waitPrev
    else w.waitNext.waitPrev = w.waitPrev
    w.waitPrev = w.waitNext = undefined
    this.length--
  }
}
