import type { Target } from './target.ts'

/**
 * A request waiting for a free slot of a target. Linked in place (the exchange is its own node),
 * so that waiting allocates nothing and leaving the queue, when the client goes, is O(1).
 */
export interface Waiter {
  waitPrev: Waiter | undefined
  waitNext: Waiter | undefined
  /** Whether another target's free slot may take it (not a retry, which must avoid the targets it tried). */
  readonly movable: boolean
  /** Its turn has come: it is sent to `target` now (the one it waited for, or another with a free slot). */
  admit (target: Target): void
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

  get first (): Waiter | undefined { return this.#head }

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
