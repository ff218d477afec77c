/** Retries always allowed on top of the ratio, so a quiet upstream can still retry. */
const RETRY_RESERVE = 10

/**
 * A per-upstream retry budget (as Finagle's): every request deposits `ratio` of a token, every
 * retry spends a whole one, and the balance never exceeds the reserve. So over any stretch of
 * time, retries <= RETRY_RESERVE + ratio x requests: an outage cannot be amplified beyond that.
 * Counting requests instead of time keeps it free of clocks and timers.
 */
export class RetryBudget {
  readonly #ratio: number
  #balance = RETRY_RESERVE

  constructor (ratio: number) {
    this.#ratio = ratio
  }

  get balance (): number { return this.#balance }

  /** Takes over the balance of the same upstream's budget in the previous runtime (reload). */
  inherit (previous: RetryBudget): void {
    this.#balance = previous.#balance
  }

  /** Called for each first try of a request. */
  deposit (): void {
    if (this.#balance < RETRY_RESERVE) this.#balance = Math.min(RETRY_RESERVE, this.#balance + this.#ratio)
  }

  /** Takes the token for one retry; false when the budget is spent. */
  withdraw (): boolean {
    if (this.#balance < 1) return false
    this.#balance -= 1
    return true
  }
}
