import { Type } from '@sinclair/typebox'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
/** The longest a Node timer waits (2^31-1 ms, about 24.8 days): past it, it fires after 1 ms. */
export const MAX_DURATION_MS = 2_147_483_647
const MALFORMED = 'must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m'

/**
 * A duration in config: a number of milliseconds, or a string such as `500ms`, `5s`, `2m`, `1h`,
 * `1d`, at most MAX_DURATION_MS either way: the string's is checked by the maxMs keyword (see
 * validate.ts), so that `30d` is refused at its line like `2592000000`.
 */
export const Duration = Type.Union(
  [Type.Integer({ minimum: 0, maximum: MAX_DURATION_MS }), Type.String({ pattern: DURATION_RE.source, maxMs: MAX_DURATION_MS })],
  { explain: 'duration' }
)

/** The longest LongDuration: 2^31 s (about 68 years), the largest delta-seconds a cache needs (RFC 9111 1.2.2). */
const MAX_LONG_DURATION_MS = 2 ** 31 * 1000

/** A duration no timer waits for, such as a cache entry's lifetime: Duration with a far larger maximum. */
export const LongDuration = Type.Union(
  [Type.Integer({ minimum: 0, maximum: MAX_LONG_DURATION_MS }), Type.String({ pattern: DURATION_RE.source, maxMs: MAX_LONG_DURATION_MS })],
  { errorMessage: 'must be a duration of at most 2147483648s (68 years): milliseconds as a number, or a string such as 5s, 2m, 1h, 30d' }
)

export function toMs (value: number | string): number {
  if (typeof value === 'number') return value
  const m = DURATION_RE.exec(value)
  if (m === null) throw new TypeError(`not a duration: ${value}`)
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS])
}

/** For the maxMs keyword: whether a duration string is at most `maximum` ms (a malformed one is the pattern's to report). */
export const atMostMs = (maximum: number, value: string): boolean => !DURATION_RE.test(value) || toMs(value) <= maximum

/**
 * Why a value is not a duration Duration accepts: malformed, or longer than a timer can wait. A
 * number may come as digits: from ${VAR}, or turned into a string by the union's string branch.
 */
export function durationMistake (value: unknown): string {
  const text = String(value)
  const ms = /^\d+$/.test(text) ? Number(text) : DURATION_RE.test(text) ? toMs(text) : undefined
  if (ms === undefined || ms <= MAX_DURATION_MS) return MALFORMED
  return `${text} is too long: at most 24 days (${MAX_DURATION_MS} ms), as Node's timers cannot wait longer; use 0 for no limit where that is allowed`
}
