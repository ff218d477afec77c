import type { Logger } from 'pino'

type Level = 'info' | 'warn' | 'error'

export interface LogLimiterOptions {
  /**
   * How long after a key's line the others of that key are only counted. Default 10 s, or
   * PORTCULLIS_LOG_LIMIT_MS (read at construction) in tests through a real gateway: 0 logs every line.
   */
  windowMs?: number
  /**
   * Keys of one group followed at once (64): past that, a new key's lines share one window per
   * group (its first line logged, the others counted). Per group (see LogLimiter.allow), so that a
   * flood of one kind (a route's plugin errors quoting the request) leaves the others their own.
   */
  maxKeys?: number
  /** A monotonic time in ms (performance.now()): an option so that tests choose the instants. */
  now?: () => number
}

/** One key's window: it began with a line logged at `start`; `suppressed` lines since were not. */
interface Window {
  /** The group whose keys it counts among (see #keysOf); undefined: the group's shared window. */
  readonly group: string | undefined
  readonly level: Level
  readonly fields: object
  readonly msg: string
  readonly start: number
  suppressed: number
}

/**
 * Limits lines a client can provoke at will (one per request, per try, per stream): the first line
 * of a key in a window is logged, the others are counted, and when the window ends with some, one
 * line says how many: `N more like "<msg>" in the last 10 s`, at the line's level, with the key's
 * fields and `suppressed: N`. One timer for them all, set only while some are counted. The keys
 * are bounded per group (a client could vary what they are made of): past `maxKeys`, a new key's
 * lines share one window of that group, whose first line is logged; other groups keep theirs.
 */
export class LogLimiter {
  readonly #log: Logger
  readonly #windowMs: number
  readonly #maxKeys: number
  readonly #now: () => number
  /** By message and key, in the order their windows began: those that have ended come first. */
  readonly #windows = new Map<string, Window>()
  /** How many windows of each group are open, the shared one past maxKeys left out. */
  readonly #keysOf = new Map<string, number>()
  /** Windows with lines counted, whose summaries #timer is for. */
  #pending = 0
  #timer: NodeJS.Timeout | undefined
  /** The limiters of the loggers this one adopted (see adopt), flushed with it. */
  readonly #adopted: LogLimiter[] = []

  constructor (log: Logger, options: LogLimiterOptions = {}) {
    this.#log = log
    this.#windowMs = options.windowMs ?? windowFromEnv()
    this.#maxKeys = options.maxKeys ?? 64
    this.#now = options.now ?? (() => performance.now())
  }

  /**
   * Whether the caller logs its line (`msg` at `level`) now; if not, it is counted. `key` tells
   * lines of the same `msg` apart; `fields`, what they share, are the summary's. `group`: the part
   * of the key a client cannot vary (route and plugin), whose keys are bounded together, and the
   * fields of its shared window's summary; by default the message's.
   */
  allow (key: string, level: Level, fields: object, msg: string, group?: { readonly key: string, readonly fields: object }): boolean {
    const now = this.#now()
    this.#expire(now)
    const id = `${msg}\0${key}`
    const open = this.#windows.get(id)
    if (open !== undefined) {
      this.#count(open, now)
      return false
    }
    const of = group === undefined ? msg : `${msg}\0${group.key}`
    const keys = this.#keysOf.get(of) ?? 0
    if (keys < this.#maxKeys) {
      this.#windows.set(id, { group: of, level, fields, msg, start: now, suppressed: 0 })
      this.#keysOf.set(of, keys + 1)
      return true
    }
    // Too many keys in this group: one window for the rest of them (groups are the config's, a few).
    const others = `\0${of}`
    const window = this.#windows.get(others)
    if (window === undefined) {
      this.#windows.set(others, { group: undefined, level, fields: group?.fields ?? {}, msg, start: now, suppressed: 0 })
      return true
    }
    this.#count(window, now)
    return false
  }

  /** Logs the summaries of the windows with lines counted, and starts anew (a config retired, the gateway stopping). */
  flush (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#expire(this.#now(), true)
    for (const limiter of this.#adopted) limiter.flush()
  }

  /** A logger's limiter (see of), and the limiter that adopted the logger, if any. */
  static readonly #of = new WeakMap<Logger, LogLimiter>()
  static readonly #parents = new WeakMap<Logger, LogLimiter>()

  /** The limiter for lines logged through `log`, one per logger: flushed with the limiter that adopted `log`, if any. */
  static of (log: Logger): LogLimiter {
    let limiter = LogLimiter.#of.get(log)
    if (limiter === undefined) {
      LogLimiter.#of.set(log, limiter = new LogLimiter(log))
      const parent = LogLimiter.#parents.get(log)
      if (parent !== undefined) parent.#adopted.push(limiter)
    }
    return limiter
  }

  /**
   * `log` (a plugin's) is this limiter's: the limiter LogLimiter.of(log) makes is flushed with it. A
   * plugin limits its lines with its own (they keep its logger's route and plugin), but cannot know
   * when its config is retired or the gateway stops.
   */
  adopt (log: Logger): void {
    LogLimiter.#parents.set(log, this)
  }

  #count (window: Window, now: number): void {
    if (window.suppressed++ === 0) this.#pending++
    this.#timer ??= this.#arm(now)
  }

  /** The timer for the earliest window's end (the first in #windows). */
  #arm (now: number): NodeJS.Timeout {
    const first = this.#windows.values().next().value as Window
    return setTimeout(() => {
      this.#timer = undefined
      const at = this.#now()
      this.#expire(at)
      if (this.#pending > 0) this.#timer = this.#arm(at)
    }, Math.max(1, first.start + this.#windowMs - now)).unref()
  }

  /** Ends the windows over at `now` (`all`: every one), logging the summaries of those with lines counted. */
  #expire (now: number, all = false): void {
    for (const [id, w] of this.#windows) {
      if (!all && w.start + this.#windowMs > now) return
      this.#windows.delete(id)
      if (w.group !== undefined) {
        const keys = (this.#keysOf.get(w.group) ?? 1) - 1
        if (keys === 0) this.#keysOf.delete(w.group); else this.#keysOf.set(w.group, keys)
      }
      if (w.suppressed === 0) continue
      this.#pending--
      const seconds = Math.max(1, Math.ceil(Math.min(now - w.start, this.#windowMs) / 1000))
      this.#log[w.level]({ ...w.fields, suppressed: w.suppressed }, `${w.suppressed} more like "${w.msg}" in the last ${seconds} s`)
    }
  }
}

/**
 * PORTCULLIS_LOG_LIMIT_MS (tests through a real gateway: 0 logs every line), if a whole number of ms
 * a timer can wait; else 10 s. Blank is unset: Number('') is 0, which would log every line.
 */
function windowFromEnv (): number {
  const raw = process.env.PORTCULLIS_LOG_LIMIT_MS
  const ms = raw === undefined || raw.trim() === '' ? NaN : Number(raw)
  return Number.isInteger(ms) && ms >= 0 && ms <= 2 ** 31 - 1 ? ms : 10_000
}
