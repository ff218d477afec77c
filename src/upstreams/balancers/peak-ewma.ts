/** How fast old latency observations fade (Finagle and Linkerd use 10s). */
const DECAY_MS = 10_000

/**
 * Peak-sensitive moving average of a target's latency (time to response headers): a slower
 * answer than the average is taken at once, faster ones pull the average down gradually.
 * So a target that starts to struggle loses traffic immediately and wins it back slowly.
 */
export class PeakEwma {
  #value = 0
  #at = 0

  get value (): number { return this.#value }

  /** The estimate decayed towards 0 for the time without observations, so a target once slow is tried again. */
  estimate (now: number): number {
    return this.#value * Math.exp(-(now - this.#at) / DECAY_MS)
  }

  observe (latencyMs: number, now: number): void {
    if (latencyMs > this.#value) {
      this.#value = latencyMs
    } else {
      const w = Math.exp(-(now - this.#at) / DECAY_MS)
      this.#value = this.#value * w + latencyMs * (1 - w)
    }
    this.#at = now
  }
}
