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
 * The weight of one target's load in FailureBaseline's average over the last picks (a few dozen
 * targets' loads): at a single pick, many requests answered at once and their clients' next ones not
 * sent yet made a busy upstream look idle (a target failing all its tries got 8-11% of the others'
 * requests, not 1-3%).
 */
const LOAD_WEIGHT = 1 / 64

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
 * (reset, then add each; one per balancer: no allocation per pick): 2^round(16 x excess).
 * `excess`: its failures beyond what the lowest failure fraction among them would give it, and
 * beyond an allowance for failures that land on every target (below), over its tries (failures +
 * answers + PRIOR_ANSWERS). `add` keeps what that needs (two targets' counts, not a list).
 *
 * A target that fails at once always has nothing in flight, so load alone sent it most requests;
 * beside targets that answer, each of its first failures doubles its cost, which ranks it behind
 * them, whatever their load, within a few tries, and it is tried again once its failures have faded
 * to where its cost meets theirs (a few tries a second), so one that recovers gets its share back.
 *
 * Failures a client provokes on every target (a path that answers 500 anywhere) say nothing of the
 * targets; they land on every target, up to SHARED_SPREAD times more on one than on another. Held
 * against a target, they kept it out of the other requests: at low concurrency a factor of 2
 * decides every tie, and a target that for a while got none of them fails all its tries (ranked by
 * fraction alone, one client sending a request at a time went to one target for seconds); under
 * load, one that got fewer of them answers fewer (a busy upstream starved one). So up to
 * SHARED_SPREAD times the failures of the target that answers best (the largest share of its tries;
 * for that one, of the next), per unit of weight (a target of 10 takes 10 times the failures of one
 * of 1: allowed the lighter one's, it lost its share to it), are not held against a target, times
 * the square of its share over the best one's, or, if more, 1 - the average load (fewer requests in
 * flight than there are targets). A target that answers nothing, in a busy upstream, gets no such
 * allowance: beside targets failing a share of their tries, its fraction alone ranks it behind
 * them (3 times the fewest failures, allowed to every target, gave it its round-robin share once
 * about a third of the requests failed everywhere; and kept out, it has the fewest, which no longer
 * kept the targets that answer alike). Squared, not in full from a third of the best share: a
 * target failing half its own tries kept its share (a cliff between 90% and 100% failing).
 */
export class FailureBaseline {
  #lowest = Infinity
  /** The two targets that answered the largest shares of their tries (ties: the fewer failures), with those per unit of weight. */
  #first: RecentFailures | undefined
  #firstShare = 0
  #firstFailures = 0
  #secondShare = 0
  #secondFailures = 0
  /** The targets' load (requests in flight and queued), averaged over the last picks' (not reset). */
  #load = 0

  reset (): void {
    this.#lowest = Infinity
    this.#first = undefined
    this.#firstShare = this.#firstFailures = this.#secondShare = this.#secondFailures = 0
  }

  /** `load`: its requests in flight and queued; `weight`: the target's. */
  add (target: RecentFailures, now: number, load: number, weight: number): void {
    const failures = target.failures(now)
    const answers = target.answers(now)
    this.#lowest = Math.min(this.#lowest, fraction(failures, answers))
    const share = answers / (failures + answers + PRIOR_ANSWERS)
    const perWeight = failures / weight
    if (this.#first === undefined || share > this.#firstShare || (share === this.#firstShare && perWeight < this.#firstFailures)) {
      if (this.#first !== undefined) { this.#secondShare = this.#firstShare; this.#secondFailures = this.#firstFailures }
      this.#first = target
      this.#firstShare = share
      this.#firstFailures = perWeight
    } else if (share > this.#secondShare || (share === this.#secondShare && perWeight < this.#secondFailures)) {
      this.#secondShare = share
      this.#secondFailures = perWeight
    }
    this.#load += (load - this.#load) * LOAD_WEIGHT
  }

  /** A power of 2, so that costs stay exact ties. `weight`: the target's. */
  factor (target: RecentFailures, now: number, weight: number): number {
    const failures = target.failures(now)
    if (failures === 0) return 1
    const answers = target.answers(now)
    const tries = failures + answers + PRIOR_ANSWERS
    // The failures of the target that answers best, or of the next for that one itself, per unit of weight.
    const theirs = target === this.#first ? this.#secondFailures : this.#firstFailures
    const idle = 1 - this.#load
    const answering = this.#firstShare === 0 ? 1 : (answers / tries / this.#firstShare) ** 2
    const shared = SHARED_SPREAD * theirs * weight * Math.min(1, Math.max(idle, answering))
    const excess = failures - Math.max(this.#lowest * tries, shared)
    return excess <= 0 ? 1 : 2 ** Math.round(MAX_EXPONENT * excess / tries)
  }
}
