/** Retries always allowed on top of the ratio, so a quiet upstream can still retry: at most this many at once... */
const RETRY_RESERVE = 10
/** ...refilled at this rate (Finagle's minRetriesPerSec), so `budget: 0` still retries after the first 10. */
const RESERVE_PER_SECOND = 10

/**
 * A per-upstream retry budget (as Finagle's): every request deposits `ratio` of a token, time adds
 * RESERVE_PER_SECOND tokens a second, every retry spends a whole one, and the balance never exceeds
 * the reserve. So over any stretch of time, retries <= RETRY_RESERVE + RESERVE_PER_SECOND x seconds
 * + ratio x requests: an outage cannot be amplified beyond that. Time is read only when a retry is
 * wanted (no timer); deposits need none, as the cap is the same for both.
 */
export class RetryBudget {
  readonly #ratio: number
  readonly #clock: () => number
  #balance = RETRY_RESERVE
  /** When time last refilled the balance (clock() milliseconds). */
  #refilledAt: number

  constructor (ratio: number, clock: () => number = () => performance.now()) {
    this.#ratio = ratio
    this.#clock = clock
    this.#refilledAt = clock()
  }

  get balance (): number {
    this.#refill()
    return this.#balance
  }

  /** Takes over the balance of the same upstream's budget in the previous runtime (reload). */
  inherit (previous: RetryBudget): void {
    this.#balance = previous.balance
    this.#refilledAt = this.#clock()
  }

  /** Called for each first try of a request. */
  deposit (): void {
    if (this.#balance < RETRY_RESERVE) this.#balance = Math.min(RETRY_RESERVE, this.#balance + this.#ratio)
  }

  /** Takes the token for one retry; false when the budget is spent. */
  withdraw (): boolean {
    if (this.balance < 1) return false
    this.#balance -= 1
    return true
  }

  #refill (): void {
    const now = this.#clock()
    this.#balance = Math.min(RETRY_RESERVE, this.#balance + (now - this.#refilledAt) * RESERVE_PER_SECOND / 1000)
    this.#refilledAt = now
  }
}
