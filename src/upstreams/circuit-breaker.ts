/** Circuit breaker settings, in milliseconds. */
export interface BreakerSettings {
  readonly failureRate: number
  readonly windowMs: number
  readonly minRequests: number
  readonly halfOpenAfterMs: number
}

export const BREAKER_DEFAULTS: BreakerSettings = { failureRate: 0.5, windowMs: 10_000, minRequests: 20, halfOpenAfterMs: 10_000 }

export type BreakerState = 'closed' | 'open' | 'half-open'

/** What a breaker has learned, as plain values that can outlive it (reload). */
export interface BreakerMemory {
  readonly state: BreakerState
  /** When it opened; for a half-open one, when its probe went (the probe answers to the old breaker). */
  readonly openedAt: number
  /** When a probe last closed it (answers to requests sent before then are not counted). */
  readonly closedAt: number
  readonly windowStart: number
  readonly counts: readonly [ok: number, failed: number, prevOk: number, prevFailed: number, taken: number, prevTaken: number]
}

/**
 * Whether the upstream lets `breaker` open now (Upstream: as many targets out at once as passive
 * ejection allows). `down`: every failure it counts was a connection its target did not take.
 */
export type OpenGate = (breaker: CircuitBreaker, down: boolean, now: number) => boolean

const ALWAYS: OpenGate = () => true

/**
 * A circuit breaker for one target. Closed: counts outcomes over a sliding window (two fixed
 * windows, the previous one weighted by how much of it still overlaps) and opens when the failure
 * rate reaches the threshold, if the upstream lets it (OpenGate; else it stays closed, and asks again
 * at its next failure). Open: no traffic until halfOpenAfter has passed. Half-open: one probe
 * request at a time; its success closes the breaker, its failure opens it again. Only a request sent
 * once halfOpenAfter has passed is a probe, known by the time it was sent; the outcomes of the others
 * (sent before it opened, or while every target was down) change nothing, even once it has closed.
 * Times are performance.now() milliseconds; no timers, no allocation.
 */
export class CircuitBreaker {
  readonly #s: BreakerSettings
  #state: BreakerState = 'closed'
  #openedAt = 0
  #closedAt = 0
  #probing = false
  #probeAt = 0
  #windowStart = 0
  #ok = 0
  #failed = 0
  #prevOk = 0
  #prevFailed = 0
  /** Of the failures, those on a connection the target took (not refused, no connect timeout). */
  #taken = 0
  #prevTaken = 0

  constructor (settings: BreakerSettings) {
    this.#s = settings
  }

  get state (): BreakerState { return this.#state }

  memory (): BreakerMemory {
    const probing = this.#state === 'half-open'
    return {
      state: probing ? 'open' : this.#state,
      openedAt: probing ? this.#probeAt : this.#openedAt,
      closedAt: this.#closedAt,
      windowStart: this.#windowStart,
      counts: [this.#ok, this.#failed, this.#prevOk, this.#prevFailed, this.#taken, this.#prevTaken]
    }
  }

  /**
   * Takes over what the same target's breaker learned in the previous runtime, so a reload does not
   * send full traffic to a target whose breaker was open. A half-open one's probe still answers to
   * the old breaker: this one waits halfOpenAfter from the probe's start, as for a probe given up on.
   */
  inherit (previous: BreakerMemory): void {
    this.#state = previous.state
    this.#openedAt = previous.openedAt
    this.#closedAt = previous.closedAt
    this.#windowStart = previous.windowStart;
    [this.#ok, this.#failed, this.#prevOk, this.#prevFailed, this.#taken, this.#prevTaken] = previous.counts
  }

  /** Whether a request may be sent now (an open breaker lets one probe through once halfOpenAfter has passed). */
  allows (now: number): boolean {
    if (this.#state === 'closed') return true
    // A probe that never reported (its client went away) stops blocking after halfOpenAfter.
    if (this.#probing) return now - this.#probeAt >= this.#s.halfOpenAfterMs
    // Open (half-open always has a probe in flight).
    return now - this.#openedAt >= this.#s.halfOpenAfterMs
  }

  /** A request was sent: if allows() says yes, an open breaker turns half-open with this request as its probe. */
  dispatched (now: number): void {
    if (this.#state === 'closed' || !this.allows(now)) return
    this.#state = 'half-open'
    this.#probing = true
    this.#probeAt = now
  }

  /**
   * Counts the outcome of a request sent at `sentAt` (as given to dispatched()); returns the state
   * when it changed, else undefined. `unanswered`: a failure on a connection the target did not take.
   * A failed probe the upstream does not let open again (`mayOpen`) closes it, counted as its first failure.
   */
  record (ok: boolean, sentAt: number, now: number, unanswered = false, mayOpen: OpenGate = ALWAYS): BreakerState | undefined {
    if (this.#state === 'open') return undefined // a late answer to a request sent before it opened
    if (this.#state === 'half-open') {
      if (sentAt !== this.#probeAt) return undefined // not the probe's: sent before it opened, or a probe given up on
      this.#probing = false
      if (!ok && mayOpen(this, unanswered, now)) {
        this.#openedAt = now
        this.#state = 'open'
        return 'open'
      }
      this.#reset(now)
      this.#closedAt = now
      this.#state = 'closed'
      if (!ok) this.#countFailure(unanswered)
      return 'closed'
    }
    if (sentAt < this.#closedAt) return undefined // sent before the probe closed it: says nothing of the target since
    this.#roll(now)
    if (ok) { this.#ok++; return undefined }
    this.#countFailure(unanswered)
    const overlap = 1 - (now - this.#windowStart) / this.#s.windowMs
    const failed = this.#failed + this.#prevFailed * overlap
    const total = failed + this.#ok + this.#prevOk * overlap
    if (total < this.#s.minRequests || failed / total < this.#s.failureRate) return undefined
    if (!mayOpen(this, this.#taken === 0 && this.#prevTaken === 0, now)) return undefined
    this.#state = 'open'
    this.#openedAt = now
    return 'open'
  }

  #countFailure (unanswered: boolean): void {
    this.#failed++
    if (!unanswered) this.#taken++
  }

  #roll (now: number): void {
    const elapsed = now - this.#windowStart
    if (elapsed < this.#s.windowMs) return
    const adjacent = elapsed < 2 * this.#s.windowMs
    this.#prevOk = adjacent ? this.#ok : 0
    this.#prevFailed = adjacent ? this.#failed : 0
    this.#prevTaken = adjacent ? this.#taken : 0
    this.#ok = this.#failed = this.#taken = 0
    this.#windowStart = now - (elapsed % this.#s.windowMs)
  }

  #reset (now: number): void {
    this.#ok = this.#failed = this.#prevOk = this.#prevFailed = this.#taken = this.#prevTaken = 0
    this.#windowStart = now
  }
}
