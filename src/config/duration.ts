import { Type } from '@sinclair/typebox'
import { shown } from './interpolate.ts'

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/
/** The longest a Node timer waits (2^31-1 ms, about 24.8 days): past it, it fires after 1 ms. */
export const MAX_DURATION_MS = 2_147_483_647

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
  { explain: 'longDuration' }
)

export function toMs (value: number | string): number {
  if (typeof value === 'number') return value
  const m = DURATION_RE.exec(value)
  if (m === null) throw new TypeError(`not a duration: ${value}`)
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS])
}

/** For the maxMs keyword: whether a duration string is at most `maximum` ms (a malformed one is the pattern's to report). */
export const atMostMs = (maximum: number, value: string): boolean => !DURATION_RE.test(value) || toMs(value) <= maximum

// Units as people spell them (`30sec`, `5 mins`), each with the one a duration takes.
const UNIT_WORDS: Record<string, string> = Object.fromEntries(Object.entries({
  ms: ['ms', 'msec', 'msecs', 'millis', 'millisecond', 'milliseconds'],
  s: ['s', 'sec', 'secs', 'second', 'seconds'],
  m: ['m', 'min', 'mins', 'minute', 'minutes'],
  h: ['h', 'hr', 'hrs', 'hour', 'hours'],
  d: ['d', 'day', 'days']
}).flatMap(([unit, words]) => words.map(w => [w, unit])))

/** A malformed duration string as it seems meant (`10 s`: 10s), and whether a space parted number and unit. */
function respelt (text: string): { meant: string, spaced: boolean } | undefined {
  const m = /^(\d+(?:\.\d+)?)(\s*)([A-Za-z]+)$/.exec(text.trim())
  const unit = m === null ? undefined : UNIT_WORDS[(m[3] as string).toLowerCase()]
  return m === null || unit === undefined ? undefined : { meant: `${m[1] as string}${unit}`, spaced: m[2] !== '' }
}

const NO_SPACE = 'no space between the number and the unit'

/** What a malformed duration string was meant as, and why it is not one: `"10 s" is written 10s`. */
export function misspelt (text: string): string | undefined {
  const r = respelt(text)
  // A well-written one ("30d", refused as too long) is no misspelling.
  return r === undefined || r.meant === text ? undefined : `${r.spaced ? NO_SPACE : 'units are ms, s, m, h and d'}: ${JSON.stringify(text)} is written ${r.meant}`
}

/**
 * Why a value is not a duration Duration (`long`: LongDuration) accepts: malformed (quoted, with
 * what it seems meant as), or longer than allowed. A number may come as digits: from ${VAR}, or
 * turned into a string by the union's string branch.
 */
export function durationMistake (value: unknown, long = false): string {
  const text = String(value)
  const ms = /^\d+$/.test(text) ? Number(text) : DURATION_RE.test(text) ? toMs(text) : undefined
  const examples = long ? '5s, 2m, 1h, 30d' : '500ms, 5s, 2m'
  if (ms === undefined || ms <= (long ? MAX_LONG_DURATION_MS : MAX_DURATION_MS)) {
    // A boolean's note is validateSchema's; a number's own text says what is wrong (-5, 1.5).
    const said = typeof value === 'string' ? ` (${misspelt(value) ?? `got ${shown(text)}`})` : ''
    return `must be a duration: milliseconds as a number, or a string such as ${examples}${said}`
  }
  if (long) return `must be a duration of at most 2147483648s (68 years): milliseconds as a number, or a string such as ${examples}`
  return `${text} is too long: at most 24 days (${MAX_DURATION_MS} ms), as Node's timers cannot wait longer; use 0 for no limit where that is allowed`
}

/** For a duration a check refuses as too short: ` (30 is milliseconds: did you mean 30s?)` when written as a bare number. */
export function bareNumberHint (value: number | string): string {
  return typeof value === 'number' && value > 0 ? ` (${value} is milliseconds: did you mean ${value}s?)` : ' (a number is milliseconds)'
}

/** `ms` in the largest of s, m, h, d it is a whole number of (90000: 90s, 86400000: 1d), if whole seconds. */
function wholeText (ms: number): string | undefined {
  const unit = (['d', 'h', 'm', 's'] as const).find(u => ms % UNIT_MS[u] === 0)
  return unit === undefined ? undefined : `${ms / UNIT_MS[unit]}${unit}`
}

/**
 * What a value a whole-seconds duration of at most `maxMs` refuses (rate-limit's window) seems meant
 * as: ` ("1 min" is written 1m)`, ` ("1.5m" is written 90s)`, ` (60 is milliseconds: ...)`; '' when
 * its refusal says it all (too long, or not whole seconds with no whole unit near).
 */
export function wholeDurationHint (value: unknown, maxMs: number): string {
  const text = String(value)
  // Digits are a number: from ${VAR}, or turned into a string by the union's string branch.
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    // 1500 as 1500s would be 1000 times longer than meant.
    if (n >= 1000) return n % 1000 !== 0 ? ` (a number is milliseconds: ${n} is not a multiple of 1000)` : ''
    return n > 0 && n * 1000 <= maxMs ? bareNumberHint(n) : ''
  }
  if (typeof value !== 'string') return ''
  const r = respelt(value)
  const meant = r?.meant ?? (DURATION_RE.test(value) ? value : undefined)
  if (meant === undefined) return ` (got ${shown(text)})`
  // `30S`: a unit in capitals; `1M` could be a month, so no guess at what is meant.
  const unit = /[A-Za-z]+/.exec(value)?.[0] ?? ''
  const capital = unit !== unit.toLowerCase() && Object.hasOwn(UNIT_MS, unit.toLowerCase())
  if (capital && unit === 'M') return ' (units are lower case: s, m, h and d; M could be a month)'
  const ms = toMs(meant)
  if (ms < 1000) return ' (the shortest is 1s)'
  const whole = wholeText(ms)
  if (ms > maxMs || whole === undefined) return ''
  const why = r === undefined || r.meant === value ? '' : `${value !== value.trim() ? 'no spaces' : r.spaced ? NO_SPACE : capital ? 'units are lower case' : 'units are s, m, h and d'}: `
  return ` (${why}${JSON.stringify(value)} is written ${whole})`
}
