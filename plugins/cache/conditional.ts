import type { HeaderMap } from '../../src/index.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

const weak = (tag: string): string => tag.trim().replace(/^W\//, '')

/** Whether a client's conditional GET/HEAD is answered with 304 by a response with these headers (RFC 9110 13.1.2, 13.1.3). */
export function notModified (request: Headers, stored: Headers): boolean {
  const inm = request['if-none-match']
  if (inm !== undefined) {
    const etag = stored.etag
    const list = String(inm)
    if (list.trim() === '*') return true
    return etag !== undefined && namesTag(list, weak(String(etag)))
  }
  const ims = request['if-modified-since']
  if (ims === undefined) return false
  // Not an HTTP-date: the field is ignored (13.1.3), and NaN compares false.
  return httpDate(stored['last-modified'] ?? stored.date) <= httpDate(ims)
}

/**
 * Whether a GET or HEAD answered from a stored 2xx fails its preconditions (RFC 9110 13.2.2 steps
 * 1-2), to be answered 412: If-Match (strong comparison, `*` holds), else If-Unmodified-Since
 * against the stored Last-Modified (ignored without one, or when not an HTTP-date: 13.1.4).
 */
export function preconditionFailed (request: Headers, stored: Headers): boolean {
  const im = request['if-match']
  if (im !== undefined) {
    const list = String(im)
    if (list.trim() === '*') return false
    const etag = stored.etag === undefined ? 'W/' : String(stored.etag).trim()
    return etag.startsWith('W/') || !namesTag(list, etag, true)
  }
  const ius = request['if-unmodified-since']
  // NaN (no Last-Modified, or not dates) compares false.
  return ius !== undefined && httpDate(stored['last-modified']) > httpDate(ius)
}

/**
 * One element of an entity-tag list and its comma (RFC 9110 8.8.3, 5.6.1): maybe none (empty
 * elements are allowed), else `W/` maybe and the opaque tag, whose etagc may be a comma. White
 * space after the tag only with one: two `[ \t]*` in a row tried every split of a client's run of
 * spaces, quadratic (16 KB of them cost ~120 ms per request).
 */
const LIST_ITEM = /[ \t]*(?:(W\/)?("[\x21\x23-\x7E\x80-\xFF]*")[ \t]*)?(?:,|$)/y

/**
 * Whether a list of entity-tags holds `opaque`, compared weakly, or strongly (`strong`: a weak
 * tag in the list matches nothing); a list that is not one (an unquoted tag, say) holds none.
 */
function namesTag (list: string, opaque: string, strong = false): boolean {
  let found = false
  for (let at = 0; at < list.length; at = LIST_ITEM.lastIndex) {
    LIST_ITEM.lastIndex = at
    const m = LIST_ITEM.exec(list)
    if (m === null) return false
    if (m[2] === opaque && !(strong && m[1] !== undefined)) found = true
  }
  return found
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
const MONTH = `(${MONTHS.join('|')})`
const DAY_NAME = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)'
const TIME = '(\\d\\d):(\\d\\d):(\\d\\d)'
// RFC 9110 5.6.7: IMF-fixdate, and the obsolete rfc850-date and asctime-date. Case-sensitive.
const IMF_FIXDATE = new RegExp(`^${DAY_NAME}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`)
const RFC850_DATE = new RegExp(`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`)
const ASCTIME_DATE = new RegExp(`^${DAY_NAME} ${MONTH} ( \\d|\\d\\d) ${TIME} (\\d{4})$`)

/**
 * An HTTP-date (RFC 9110 5.6.7) in ms since the epoch; NaN for anything else (Date.parse would
 * take `June 5 2026`, and read an asctime-date as local time).
 */
export function httpDate (value: string | string[] | undefined): number {
  if (typeof value !== 'string') return NaN
  let m = IMF_FIXDATE.exec(value)
  if (m !== null) return utc(m[3], m[2], m[1], m[4], m[5], m[6])
  m = ASCTIME_DATE.exec(value)
  if (m !== null) return utc(m[6], m[1], m[2], m[3], m[4], m[5])
  m = RFC850_DATE.exec(value)
  if (m === null) return NaN
  // A two-digit year more than 50 years ahead is the latest past year ending so.
  const latest = new Date().getUTCFullYear() + 50
  return utc(latest - (latest - Number(m[3])) % 100, m[2], m[1], m[4], m[5], m[6])
}

/** The time of a date's parts (as the patterns matched them); NaN for a day or a time out of range. */
function utc (year: string | number | undefined, month: string | undefined, day: string | undefined, h: string | undefined, min: string | undefined, sec: string | undefined): number {
  const y = Number(year)
  const mo = MONTHS.indexOf(month as string)
  const d = Number(day)
  // Date.UTC carries 31 Apr over to 1 May: a day past the month's end is no date.
  if (d < 1 || at(y, mo, d) >= at(y, mo + 1, 1) || Number(h) > 23 || Number(min) > 59 || Number(sec) > 60) return NaN
  return at(y, mo, d, Number(h), Number(min), Number(sec))
}

/** Date.UTC for any year: Date.UTC reads 0 to 99 as 1900 to 1999. */
function at (y: number, mo: number, d: number, h = 0, min = 0, sec = 0): number {
  const t = new Date(0)
  t.setUTCFullYear(y, mo, d)
  return t.setUTCHours(h, min, sec)
}

/** Whether two date fields are one time: as HTTP-dates, else (neither one) as the same text. */
export function sameDate (a: string | string[] | undefined, b: string | string[] | undefined): boolean {
  const x = httpDate(a)
  const y = httpDate(b)
  return Number.isNaN(x) || Number.isNaN(y) ? Number.isNaN(x) && Number.isNaN(y) && a !== undefined && String(a) === String(b) : x === y
}

// The client's conditionals, and its Range: a revalidation asks for the whole stored response
// again, so that a 200 can replace it (a 206 could not, and would drop it).
const CLIENT_ONLY = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range'] as const

/** Whether the cache replaces this request field on a revalidation (see setValidators). */
export const rewrittenByCache = (name: string): boolean => (CLIENT_ONLY as readonly string[]).includes(name)

/** Whether the request has a field that can make the upstream answer with less than the whole response (206, 304, 412). */
export const asksForLess = (h: Headers): boolean => CLIENT_ONLY.some(name => h[name] !== undefined)

/** Replaces the client's conditionals (and Range) with the stored response's validators (RFC 9111 4.3.1). */
export function setValidators (headers: HeaderMap, stored: Headers): void {
  for (const h of CLIENT_ONLY) delete headers[h]
  if (stored.etag !== undefined) headers['if-none-match'] = stored.etag
  if (stored['last-modified'] !== undefined) headers['if-modified-since'] = stored['last-modified']
}

/**
 * Whether a 304 is about the stored response (RFC 9111 4.3.4): its ETag, else its Last-Modified,
 * is the stored one's. A 304 naming another representation must update nothing. ETags are
 * compared weakly, as the If-None-Match the 304 answers was.
 */
export function describesStored (notModified: Headers, stored: Headers): boolean {
  const etag = notModified.etag
  if (etag !== undefined) return stored.etag !== undefined && weak(String(etag)) === weak(String(stored.etag))
  const lm = notModified['last-modified']
  return lm === undefined || sameDate(lm, stored['last-modified'])
}

// Describe the stored body, which a 304 does not replace (RFC 9111 3.2); the rest are ours or per-response.
const KEEP_ON_UPDATE = new Set(['content-length', 'content-encoding', 'content-type', 'content-range', 'transfer-encoding', 'x-request-id', 'set-cookie', 'cache-status', 'age'])

/** The stored headers updated with those of a 304 (RFC 9111 3.2, 4.3.4). */
export function updatedHeaders (stored: Record<string, string | string[]>, fresh: HeaderMap): Record<string, string | string[]> {
  const out = { ...stored }
  for (const name in fresh) {
    const v = fresh[name]
    if (v !== undefined && !KEEP_ON_UPDATE.has(name)) out[name] = v
  }
  return out
}

// What a 304 to the client carries (RFC 9110 15.4.5).
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'] as const

export function notModifiedHeaders (stored: Headers): HeaderMap {
  const out: HeaderMap = {}
  for (const name of NOT_MODIFIED_FIELDS) if (stored[name] !== undefined) out[name] = stored[name]
  return out
}
