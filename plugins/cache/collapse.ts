import type { Entry } from './entry.ts'

/** What a leader ended with when it had no answer at all (its client left, a plugin failed): one of its waiters leads instead. */
export const LEFT = Symbol('leader left')
export type Outcome = Entry | undefined | typeof LEFT

interface Flight { readonly done: Promise<Outcome>, readonly timer: NodeJS.Timeout }

/**
 * Concurrent misses for one key: the first request (the leader) goes upstream, the others wait for
 * what it stores. A leader that stores nothing (private, uncacheable, failed) or takes longer than
 * the timeout releases the waiters with nothing, and each then goes upstream itself. A leader
 * that ends with no answer (LEFT) hands the fetch on: the waiters collapse again, behind one of them.
 */
export class Collapser {
  readonly #flights = new Map<string, Flight>()
  readonly #timeoutMs: number

  constructor (timeoutMs: number) { this.#timeoutMs = timeoutMs }

  /** The entry another request is fetching for `key`, when one is; undefined when the caller should lead. */
  waitFor (key: string): Promise<Outcome> | undefined {
    return this.#flights.get(key)?.done
  }

  /** Makes the caller the leader for `key`; call the returned function with what was stored, undefined (nothing to share) or LEFT. */
  lead (key: string): (e: Outcome) => void {
    let resolve!: (e: Outcome) => void
    const done = new Promise<Outcome>(r => { resolve = r })
    // Only the first call counts: the flight is gone after it (and a later leader's is not this one).
    const finish = (e: Outcome) => {
      const f = this.#flights.get(key)
      if (f?.done !== done) return
      clearTimeout(f.timer)
      this.#flights.delete(key)
      resolve(e)
    }
    const timer = setTimeout(finish, this.#timeoutMs, undefined)
    timer.unref()
    this.#flights.set(key, { done, timer })
    return finish
  }
}
