/** A collector's answer asking the exporter to slow down (OTLP's throttling: 429 or 503), with its Retry-After. */
export interface Throttle {
  readonly status: number
  readonly retryAfter: string | undefined
}

/** A wait under way: the status that asked for it and when sending resumes (for the lines). */
export interface Pause {
  readonly status: number
  readonly resumesAt: string
}

/** The longest wait a throttling answer gets, whatever its Retry-After says: and the fallback backoff's cap. */
const MAX_PAUSE_MS = 60_000
/** The first wait after a throttling answer without a (valid) Retry-After; doubled at each one after it. */
const FIRST_BACKOFF_MS = 1_000

// An IMF-fixdate (RFC 9110 5.6.7), the form a server sends: Date.parse alone reads `-5` or `abc 12` as a date.
const HTTP_DATE = /^\s*[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\s*$/

/**
 * The milliseconds a Retry-After (delta-seconds or HTTP-date) asks to wait; undefined if it is not
 * one, or asks for no wait (0, a past date): the doubling backoff then, not a collector polled at once.
 */
export function retryAfterMs (retryAfter: string | undefined): number | undefined {
  if (retryAfter === undefined) return undefined
  const ms = /^\s*\d+\s*$/.test(retryAfter) ? Number(retryAfter) * 1000 : HTTP_DATE.test(retryAfter) ? Date.parse(retryAfter) - Date.now() : NaN
  return ms > 0 ? ms : undefined
}

interface EndpointPause {
  status: number
  /** performance.now() from which requests go again: a wall clock set back does not stretch the wait. */
  resumeAt: number
  backoffMs: number
}

/**
 * By endpoint URL, for the whole process: every pipeline to a collector (each distinct setting's,
 * and the next config's after a reload) honours the wait it asked of any of them.
 */
const pauses = new Map<string, EndpointPause>()

const shown = (pause: EndpointPause, now: number): Pause => ({ status: pause.status, resumesAt: new Date(Date.now() + pause.resumeAt - now).toISOString() })

/** The wait `url` asked for, if it still runs. */
export function pauseOf (url: string): Pause | undefined {
  const pause = pauses.get(url)
  const now = performance.now()
  return pause !== undefined && now < pause.resumeAt ? shown(pause, now) : undefined
}

/**
 * A throttling answer from `url`: no request until its Retry-After, or without one a backoff from
 * 1 s, doubled at each throttling answer until a request works, at most 60 s.
 */
export function throttled (url: string, throttle: Throttle): Pause {
  const now = performance.now()
  const pause = pauses.get(url) ?? { status: throttle.status, resumeAt: 0, backoffMs: FIRST_BACKOFF_MS }
  const asked = retryAfterMs(throttle.retryAfter)
  if (asked !== undefined) pause.resumeAt = Math.max(pause.resumeAt, now + Math.min(asked, MAX_PAUSE_MS))
  // Not again for answers to exports sent before the wait began (side by side, at a shutdown).
  else if (now >= pause.resumeAt) {
    pause.resumeAt = now + pause.backoffMs
    pause.backoffMs = Math.min(2 * pause.backoffMs, MAX_PAUSE_MS)
  }
  pause.status = throttle.status
  pauses.set(url, pause)
  return shown(pause, now)
}

/** A request to `url` that worked: the backoff starts again from 1 s (once no wait runs). */
export function resumed (url: string): void {
  const pause = pauses.get(url)
  if (pause !== undefined && performance.now() >= pause.resumeAt) pauses.delete(url)
}
