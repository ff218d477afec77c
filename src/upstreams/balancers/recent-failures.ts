/** How fast a target's count of failures in a row fades without further failures: it halves every second. */
const HALF_LIFE_MS = 1_000
/** At most this many doublings (x65,536): enough to outweigh any load, short enough to fade in seconds. */
const MAX_COUNT = 16

/**
 * A target's recent failures in a row, as a factor on its cost for the load-aware balancers
 * (least-connections, p2c-ewma): 2^round(count), where each failed try adds one to the count, an
 * answer resets it, and it halves every second. A target that fails at once always has nothing in
 * flight, so load alone sent it most requests; doubling per failure ranks it behind the targets
 * that answer, whatever their load, within a few tries, and it is tried again once the count has
 * faded to where its cost meets theirs (about one try per 1.4/count seconds: a few a second), so
 * one that recovers gets its share back. One failure among answers doubles it for a second at most.
 */
export class RecentFailures {
  #count = 0
  #at = 0

  /** The factor on the target's cost at `now` (performance.now()): 1 without recent failures. */
  factor (now: number): number {
    return this.#count === 0 ? 1 : 2 ** Math.round(this.#decayed(now))
  }

  failed (now: number): void {
    this.#count = Math.min(MAX_COUNT, this.#decayed(now) + 1)
    this.#at = now
  }

  answered (): void {
    this.#count = 0
  }

  #decayed (now: number): number {
    return this.#count * 2 ** (-Math.max(0, now - this.#at) / HALF_LIFE_MS)
  }
}
