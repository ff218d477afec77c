/** How fast a target's counts of failed tries and answers fade: they halve every second. */
const HALF_LIFE_MS = 1_000
/** At most this many doublings (x65,536): enough to outweigh any load, short enough to fade in seconds. */
const MAX_EXPONENT = 16
/**
 * Answers a target is taken to have besides its own: with MAX_EXPONENT doublings over the range of
 * the failure fraction, each of a few failures on a target without answers doubles its cost (as
 * failures counted one by one did), and failures alone fade back to nothing.
 */
const PRIOR_ANSWERS = MAX_EXPONENT
/**
 * How unevenly the balancer itself spreads failures that land on every target: least-connections
 * sends requests that fail at once to the targets with nothing in flight, in turn after the last
 * one picked, so a target not busy with the other requests gets a few times as many as one that is.
 */
const SHARED_SPREAD = 3

/**
 * A target's recent failed tries and answers, for the load-aware balancers (least-connections,
 * p2c-ewma), both counts halving every second. See FailureBaseline.
 */
export class RecentFailures {
  #failures = 0
  #answers = 0
  #at = 0

  /** At `now` (performance.now()). */
  failures (now: number): number {
    return this.#failures === 0 ? 0 : this.#failures * this.#kept(now)
  }

  answers (now: number): number {
    return this.#answers === 0 ? 0 : this.#answers * this.#kept(now)
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

/** Failures / (failures + answers + PRIOR_ANSWERS): 0 without failures, below 1. */
function fraction (failures: number, answers: number): number {
  return failures === 0 ? 0 : failures / (failures + answers + PRIOR_ANSWERS)
}

/**
 * The factor on a target's cost for its recent failures, against the targets a pick compares
 * (reset, then add each; one per balancer: no allocation per pick): 2^round(16 x excess x
 * answered^2). `excess`: its failures beyond what the lowest failure fraction among them would give
 * it, and beyond SHARED_SPREAD times the fewest failures any of them has, over its tries (failures
 * + answers + PRIOR_ANSWERS); `answered`: the share of the other targets' tries they answered.
 *
 * A target that fails at once always has nothing in flight, so load alone sent it most requests;
 * beside targets that answer, each of its first failures doubles its cost, which ranks it behind
 * them, whatever their load, within a few tries, and it is tried again once its failures have faded
 * to where its cost meets theirs (a few tries a second), so one that recovers gets its share back.
 *
 * Failures a client provokes on every target (a path that answers 500 anywhere) say nothing of the
 * targets, and at low concurrency a factor of 2 decides every tie: a target that for a while got
 * none of the other requests fails all its tries, and ranked by fraction alone it lost them for
 * good to the one that got them (so did, compared as failures per answer, all the targets but one,
 * and most of the 500s went to that one too). Those failures land on every target, and are not held
 * against one up to SHARED_SPREAD times the fewest; and the more of the others' tries fail too, the
 * less a difference weighs. The price: while some requests fail everywhere, a target failing all
 * of its own gets a few times the failures of the others (passive ejection, the breaker and health
 * checks still take it out).
 */
export class FailureBaseline {
  #lowest = Infinity
  #fewest = Infinity
  #failures = 0
  #answers = 0

  reset (): void {
    this.#lowest = Infinity
    this.#fewest = Infinity
    this.#failures = 0
    this.#answers = 0
  }

  add (target: RecentFailures, now: number): void {
    const failures = target.failures(now)
    const answers = target.answers(now)
    this.#lowest = Math.min(this.#lowest, fraction(failures, answers))
    this.#fewest = Math.min(this.#fewest, failures)
    this.#failures += failures
    this.#answers += answers
  }

  /** A power of 2, so that costs stay exact ties. */
  factor (target: RecentFailures, now: number): number {
    const failures = target.failures(now)
    if (failures === 0) return 1
    const answers = target.answers(now)
    const tries = failures + answers + PRIOR_ANSWERS
    const excess = (failures - Math.max(this.#lowest * tries, SHARED_SPREAD * this.#fewest)) / tries
    if (excess <= 0) return 1
    // max(0, ...): the sums less this target's counts may round below 0
    const answered = 1 - fraction(Math.max(0, this.#failures - failures), Math.max(0, this.#answers - answers))
    return 2 ** Math.round(MAX_EXPONENT * excess * answered * answered)
  }
}
