import type { Logger } from 'pino'
import type { PluginSetupContext } from '../../src/index.ts'

const EVERY_MS = 10_000

type Fields = { readonly store: string, readonly [name: string]: unknown }

/**
 * Logs a plugin's store failures at warn level at most once per 10 s, with how many happened since
 * the last line: while Redis is down (or slow) every request's call fails, and one line each would
 * let any client flood the log. Failures counted after a line are logged 10 s after it (the store
 * may have recovered meanwhile, and no failure would come to log them), or by dispose().
 */
export class StoreErrorLog {
  readonly #log: Logger
  readonly #fields: Readonly<Record<string, unknown>>
  readonly #message: string
  readonly #everyMs: number
  #last = -Infinity
  #missed = 0
  #error: unknown
  #timer: NodeJS.Timeout | undefined

  /**
   * `fields`: on every line (the store's name at least); `message`: what the failures mean for
   * requests; `everyMs`: the 10 s (an option so that tests wait less).
   */
  constructor (log: Logger, fields: Fields, message: string, everyMs = EVERY_MS) {
    this.#log = log
    this.#fields = fields
    this.#message = `${message} (logged at most every ${everyMs / 1000}s)`
    this.#everyMs = everyMs
  }

  /** `now`: a monotonic time in ms (a parameter so that tests choose the instants). */
  report (err: unknown, now = performance.now()): void {
    this.#missed++
    this.#error = err
    if (now - this.#last >= this.#everyMs) {
      this.#write(now)
      return
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      this.#write(performance.now())
    }, this.#last + this.#everyMs - now).unref()
  }

  /** Logs the failures not logged yet (the config retired, the gateway stopping). */
  dispose (): void {
    if (this.#missed > 0) this.#write(performance.now())
  }

  #write (now: number): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#log.warn({ ...this.#fields, error: (this.#error as Error).message, failures: this.#missed }, this.#message)
    this.#last = now
    this.#missed = 0
  }
}

/**
 * The StoreErrorLog of a plugin's failures of one store with one meaning, for all the config's
 * routes (ctx.shared, disposed with the config): one per route let a client that spreads its
 * requests over routes get a line per route. Its lines carry the first route's name.
 */
export function storeErrorLog (ctx: PluginSetupContext, fields: Fields, message: string): StoreErrorLog {
  return ctx.shared(`store errors ${JSON.stringify(fields)} ${message}`, () => new StoreErrorLog(ctx.log, fields, message))
}
