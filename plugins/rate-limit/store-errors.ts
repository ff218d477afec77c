import type { Logger } from 'pino'

const EVERY_MS = 10_000

/**
 * Logs store failures at most once per 10 s, with how many happened since the last line: while
 * Redis is down every request fails, and one line each would flood the log.
 */
export class StoreErrorLog {
  readonly #log: Logger
  #last = -Infinity
  #missed = 0

  constructor (log: Logger) { this.#log = log }

  /** `now`: a monotonic time in ms (a parameter so that tests choose the instants). */
  report (err: unknown, store: string, onStoreError: string, now = performance.now()): void {
    this.#missed++
    if (now - this.#last < EVERY_MS) return
    this.#log.warn({ store, error: (err as Error).message, failures: this.#missed, onStoreError },
      `rate-limit: store "${store}" failed; requests are ${onStoreError === 'deny' ? 'denied (503)' : 'allowed unlimited'} while it does (logged at most every 10s)`)
    this.#last = now
    this.#missed = 0
  }
}
