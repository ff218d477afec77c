/** How fast old latency observations fade (Finagle and Linkerd use 10s). */
const DECAY_MS = 10_000

/**
 * Peak-sensitive moving average of a target's latency (time to response headers): a slower
 * answer than the average is taken at once, faster ones pull the average down gradually.
 * So a target that starts to struggle loses traffic immediately and wins it back slowly.
 * Failed tries count too, as a penalty (see Upstream.outcome); the same average over answers
 * alone is kept apart: penalties are measured against it, so they cannot feed on each other.
 */
export class PeakEwma {
  #value = 0
  #at = 0
  #answers = 0
  #answersAt = 0

  get value (): number { return this.#value }

  /** The estimate decayed towards 0 for the time without observations, so a target once slow is tried again. */
  estimate (now: number): number {
    return this.#value * Math.exp(-(now - this.#at) / DECAY_MS)
  }

  /** As estimate(), over answers only: failed tries leave it alone. */
  answers (now: number): number {
    return this.#answers * Math.exp(-(now - this.#answersAt) / DECAY_MS)
  }

  /** An answer's latency. */
  observe (latencyMs: number, now: number): void {
    if (!valid(latencyMs)) return
    this.#value = next(this.#value, this.#at, latencyMs, now)
    this.#at = now
    this.#answers = next(this.#answers, this.#answersAt, latencyMs, now)
    this.#answersAt = now
  }

  /** A failed try's penalty: counts in estimate(), not in answers(). */
  failed (penaltyMs: number, now: number): void {
    if (!valid(penaltyMs)) return
    this.#value = next(this.#value, this.#at, penaltyMs, now)
    this.#at = now
  }
}

/** NaN, Infinity or a negative time is no latency: taken, it would stick for good (Infinity never decays). */
function valid (ms: number): boolean {
  return ms >= 0 && ms < Infinity
}

function next (value: number, at: number, sample: number, now: number): number {
  if (sample > value) return sample
  const w = Math.exp(-(now - at) / DECAY_MS)
  return value * w + sample * (1 - w)
}
