/** How fast a target's counts of failed tries and answers fade: they halve every second. */
const HALF_LIFE_MS = 1_000
/** At most this many doublings (x65,536): enough to outweigh any load, short enough to fade in seconds. */
const MAX_EXPONENT = 16

/**
 * A target's recent failed tries per answer, for the load-aware balancers (least-connections,
 * p2c-ewma): its failed tries over its answers plus one, both counts halving every second (the
 * one more lets failures alone fade too). See failureFactor.
 */
export class RecentFailures {
  #failures = 0
  #answers = 0
  #at = 0

  /** At `now` (performance.now()): 0 without failures. */
  ratio (now: number): number {
    if (this.#failures === 0) return 0
    const kept = this.#kept(now)
    return this.#failures * kept / (this.#answers * kept + 1)
  }

  failed (now: number): void {
    const kept = this.#kept(now)
    this.#failures = this.#failures * kept + 1
    this.#answers *= kept
    this.#at = now
  }

  answered (now: number): void {
    const kept = this.#kept(now)
    this.#failures *= kept
    this.#answers = this.#answers * kept + 1
    this.#at = now
  }

  /** What is left of the counts at `now`. */
  #kept (now: number): number {
    return 2 ** (-Math.max(0, now - this.#at) / HALF_LIFE_MS)
  }
}

/**
 * The factor on a target's cost: 2^round(ratio / (1 + best)), at most 2^16, where `ratio` is its
 * RecentFailures ratio and `best` the lowest among the targets compared. A target that fails at
 * once always has nothing in flight, so load alone sent it most requests; beside targets that
 * answer (best 0), each failure doubles its cost, which ranks it behind them, whatever their load,
 * within a few tries, and it is tried again once its failures have faded to where its cost meets
 * theirs (a few tries a second), so one that recovers gets its share back. Failures a client
 * provokes on every target (a path that answers 500 anywhere) raise `best` with the rest: the
 * targets stay alike, and one that for a while got mostly those (least-connections gives the
 * target that has just become cheapest to whichever request comes first: most often a fast one)
 * is not starved. Counted in a row and reset by an answer, they moved nearly all the other
 * requests onto one target.
 */
export function failureFactor (ratio: number, best: number): number {
  return ratio === 0 ? 1 : 2 ** Math.round(Math.min(MAX_EXPONENT, ratio / (1 + best)))
}
