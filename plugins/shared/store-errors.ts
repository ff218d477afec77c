import type { Logger } from 'pino'

const EVERY_MS = 10_000

/**
 * Logs a plugin's store failures at warn level at most once per 10 s, with how many happened since
 * the last line: while Redis is down (or slow) every request's call fails, and one line each would
 * let any client flood the log.
 */
export class StoreErrorLog {
  readonly #log: Logger
  readonly #fields: Readonly<Record<string, unknown>>
  readonly #message: string
  #last = -Infinity
  #missed = 0

  /** `fields`: on every line (the store's name at least); `message`: what the failures mean for requests. */
  constructor (log: Logger, fields: { readonly store: string, readonly [name: string]: unknown }, message: string) {
    this.#log = log
    this.#fields = fields
    this.#message = `${message} (logged at most every 10s)`
  }

  /** `now`: a monotonic time in ms (a parameter so that tests choose the instants). */
  report (err: unknown, now = performance.now()): void {
    this.#missed++
    if (now - this.#last < EVERY_MS) return
    this.#log.warn({ ...this.#fields, error: (err as Error).message, failures: this.#missed }, this.#message)
    this.#last = now
    this.#missed = 0
  }
}
