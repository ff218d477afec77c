/** What a leader ended with when it had no answer at all (its client left, a plugin failed): one of its waiters leads instead, once. */
export const LEFT = Symbol('leader left')
export type Outcome<T> = T | undefined | typeof LEFT

/** `tag`: the URL tag of its key (see RequestKey), which an invalidation detaches by. */
interface Flight<T> { readonly done: Promise<Outcome<T>>, readonly tag: string }

/**
 * Concurrent misses for one key: the first request (the leader) goes upstream, the others wait for
 * what it stores. A leader that stores nothing (private, uncacheable, failed) or takes longer than
 * the timeout releases the waiters with nothing, and each then goes upstream itself. A leader
 * that ends with no answer (LEFT) hands the fetch on: the waiters collapse again, behind one of them,
 * whose own LEFT releases them (one hand-over: no chain of leaders one after the other).
 * A leader may keep its flight once it shares an entry not yet in the store: requests that come
 * meanwhile get that entry at once, until the leader ends the flight (the entry written, or dropped).
 * `T`: what a leader shares (the entry, and how it got it).
 */
export class Collapser<T> {
  readonly #flights = new Map<string, Flight<T>>()
  /** How long a flight keeps its waiters at most (collapseTimeout). */
  readonly timeoutMs: number

  constructor (timeoutMs: number) { this.timeoutMs = timeoutMs }

  /** What another request is fetching for `key`, when one is; undefined when the caller should lead. */
  waitFor (key: string): Promise<Outcome<T>> | undefined {
    return this.#flights.get(key)?.done
  }

  /**
   * Makes the caller the leader for `key` (of URL tag `tag`); call the returned function with what was stored,
   * undefined (nothing to share) or LEFT. `keep` (with an entry): the flight stays, answering with
   * it at once, until a next call ends it. `handedOver`: the caller was handed the fetch (got LEFT),
   * so its LEFT answers undefined.
   */
  lead (key: string, tag: string, handedOver = false): (e: Outcome<T>, keep?: boolean) => void {
    let resolve!: (e: Outcome<T>) => void
    const flight: Flight<T> = { done: new Promise<Outcome<T>>(r => { resolve = r }), tag }
    // Only the first call answers (a promise settles once), its waiters also when the flight was
    // detached; the flight is gone after it, or after the next one when kept (and a later leader's
    // is not this one).
    const finish = (e: Outcome<T>, keep = false) => {
      clearTimeout(timer)
      if (!keep && this.#flights.get(key) === flight) this.#flights.delete(key)
      resolve(e === LEFT && handedOver ? undefined : e)
    }
    const timer = setTimeout(finish, this.timeoutMs, undefined)
    timer.unref()
    this.#flights.set(key, flight)
    return finish
  }

  /**
   * A purge or an invalidation: the flights it selects (by key and URL tag) take no more waiters
   * (their fetch began before it), and the next request for such a key leads a new one. Those
   * already waiting still get the leader's answer.
   */
  detach (selects: (key: string, tag: string) => boolean): void {
    for (const [key, flight] of this.#flights) if (selects(key, flight.tag)) this.#flights.delete(key)
  }
}
