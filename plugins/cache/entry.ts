import { validateHeaderName, validateHeaderValue } from 'node:http'
import { LRUCache } from 'lru-cache'
import type { HeaderMap } from '../../src/index.ts'
import { deltaSeconds, isQualified, MAX_LIFETIME, parseCacheControl, seconds, type Directives } from './cache-control.ts'
import { httpDate } from './conditional.ts'

/** A stored response, with its freshness worked out once when stored (RFC 9111 4.2). */
export interface Entry {
  readonly status: number
  readonly headers: Record<string, string | string[]>
  /** When the response was received (ms since the epoch). */
  readonly responseTime: number
  /** Its age when received, in seconds (RFC 9111 4.2.3 corrected_initial_age). */
  readonly initialAge: number
  /** Freshness lifetime in seconds (0: must be revalidated before each use). */
  readonly lifetime: number
  /** The upstream's stale-while-revalidate and stale-if-error, seconds (the route's windows are its config's when served). */
  readonly swr: number
  readonly sie: number
  /** must-revalidate, proxy-revalidate, s-maxage or no-cache (bare): never served stale. */
  readonly mustRevalidate: boolean
  /** Vary secondary key suffix this entry was stored under ('' without Vary). */
  readonly variant: string
  /**
   * A fingerprint of the route's key settings it was stored under ('' when stored by a version
   * without them): under other settings (another instance's config, one before a restart) its key
   * may name other requests, so it is a miss there.
   */
  readonly keyed: string
  readonly tags: readonly string[]
  readonly body: Buffer
}

/** What the primary key holds for a response with Vary: the header names the variants are keyed on. */
export interface VaryMarker { readonly vary: readonly string[] }

export interface FreshnessRules {
  /** Cap of the Last-Modified heuristic, seconds. */
  readonly heuristicMax: number
  /** Freshness for responses without any, seconds (0: none). */
  readonly defaultTtl: number
  /** The route's stale-if-error and stale-while-revalidate windows, seconds (0: the upstream's only); applied when an entry is served, not stored in it. */
  readonly staleIfError: number
  readonly staleWhileRevalidate: number
}

// RFC 9110 15.1: heuristically cacheable statuses (206 left out: ranges are not stored).
const CACHEABLE_BY_DEFAULT = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501])

/**
 * Freshness of a response received at `responseTime` to a request sent at `requestTime` (RFC 9111
 * 4.2.1, 4.2.2, 4.2.3), for a shared cache.
 */
export function freshness (status: number, headers: HeaderMap, responseTime: number, rules: FreshnessRules, requestTime = responseTime): Pick<Entry, 'initialAge' | 'lifetime' | 'swr' | 'sie' | 'mustRevalidate'> {
  const cc = parseCacheControl(headers['cache-control'])
  // Dates are HTTP-dates only (RFC 9110 5.6.7): Date.parse would take `+275760-09-13T00:00:00.000Z`.
  const date = httpDate(headers.date)
  // Date has a resolution of one second and servers refresh it about once a second: below 2 s it is noise, not age.
  const apparent = Number.isNaN(date) ? 0 : Math.floor((responseTime - date) / 1000)
  const apparentAge = apparent < 2 ? 0 : apparent
  // Age given twice (joined by a comma): the first counts, as for a repeated directive. The
  // response aged on its way too: the time the upstream took counts (corrected_age_value).
  const ageValue = deltaSeconds(String(headers.age ?? '').split(',')[0]!.trim()) ?? 0
  const initialAge = Math.max(apparentAge, ageValue + Math.max(0, responseTime - requestTime) / 1000)
  // no-cache="field" withholds its fields from the stored response instead (see withheldFields).
  const noCache = (cc['no-cache'] !== undefined && !isQualified(cc, 'no-cache')) || (headers['cache-control'] === undefined && /no-cache/i.test(String(headers.pragma ?? '')))
  const mustRevalidate = noCache || cc['must-revalidate'] !== undefined || cc['proxy-revalidate'] !== undefined || cc['s-maxage'] !== undefined
  return {
    initialAge,
    lifetime: noCache ? 0 : lifetime(status, headers, cc, Number.isNaN(date) ? responseTime : date, rules),
    swr: seconds(cc, 'stale-while-revalidate') ?? 0,
    sie: seconds(cc, 'stale-if-error') ?? 0,
    mustRevalidate
  }
}

/** s-maxage over max-age over Expires; then the Last-Modified heuristic (10%, capped), then defaultTtl. */
function lifetime (status: number, headers: HeaderMap, cc: Directives, date: number, rules: FreshnessRules): number {
  // The first of them present decides; invalid (max-age=abc, max-age=-1, a bare max-age): stale (RFC 9111 4.2.1).
  const explicit = cc['s-maxage'] !== undefined ? 's-maxage' : cc['max-age'] !== undefined ? 'max-age' : undefined
  if (explicit !== undefined) return seconds(cc, explicit) ?? 0
  if (headers.expires !== undefined) {
    const expires = httpDate(headers.expires) // not an HTTP-date, "0" included: already expired (RFC 9111 5.3)
    return Number.isNaN(expires) ? 0 : Math.min(Math.max(0, (expires - date) / 1000), MAX_LIFETIME)
  }
  if (!CACHEABLE_BY_DEFAULT.has(status) && cc.public === undefined) return 0
  const lastModified = httpDate(headers['last-modified'])
  if (!Number.isNaN(lastModified)) return Math.min(Math.max(0, (date - lastModified) / 1000) * 0.1, rules.heuristicMax)
  return rules.defaultTtl
}

/** The entry's current age in seconds (RFC 9111 4.2.3). */
export const currentAge = (e: Entry, now: number): number => e.initialAge + Math.max(0, now - e.responseTime) / 1000

export const hasValidator = (headers: HeaderMap): boolean => headers.etag !== undefined || headers['last-modified'] !== undefined

// Stored as [4-byte length of the JSON head][head][body]: one value per entry, the body kept as
// bytes. The head carries the format and the body's length: a value cut short, or written by
// another format, is not read as whole.
const FORMAT = 1
const decoded = new WeakMap<Buffer, Entry | VaryMarker>()

export function encodeEntry (e: Entry): Buffer {
  const { body, ...head } = e
  const json = Buffer.from(JSON.stringify({ format: FORMAT, size: body.length, ...head }))
  const len = Buffer.allocUnsafe(4)
  len.writeUInt32BE(json.length)
  return Buffer.concat([len, json, body])
}

export const encodeMarker = (m: VaryMarker): Buffer => encodeEntry({ vary: m.vary, body: Buffer.alloc(0) } as unknown as Entry)

/**
 * Decodes a stored value; the memory store hands back the same Buffer each time, so its decoding
 * is kept. Throws on a value the cache cannot use as it is (not ours, cut short, of another format,
 * a head of the wrong shape): a store shared with others (Redis) may hold anything.
 */
export function decode (value: Buffer): Entry | VaryMarker {
  const known = decoded.get(value)
  if (known !== undefined) return known
  const len = value.length < 4 ? -1 : value.readUInt32BE(0)
  if (len < 0 || 4 + len > value.length) throw new Error('shorter than its head')
  const out = fromHead(JSON.parse(value.subarray(4, 4 + len).toString()), value.subarray(4 + len))
  decoded.set(value, out)
  return out
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype
const isSeconds = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(x => typeof x === 'string')

/** An entry or marker from its head, checked field by field: what the hooks read must be what they expect. */
function fromHead (head: unknown, body: Buffer): Entry | VaryMarker {
  if (!isObject(head)) throw new Error('head not an object')
  if (head.format !== FORMAT) throw new Error(`format ${String(head.format)}, not ${FORMAT}`)
  if (head.size !== body.length) throw new Error(`body of ${body.length} bytes, ${String(head.size)} stored`)
  if ('vary' in head) {
    const vary = head.vary
    if (!isStrings(vary) || vary.length === 0 || !vary.every(isToken)) throw new Error('Vary marker\'s names')
    return { vary }
  }
  const { status, headers, responseTime, initialAge, lifetime, swr, sie, mustRevalidate, variant, tags, keyed = '' } = head
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) throw new Error(`status ${String(status)}`)
  if (!isSeconds(responseTime) || !isSeconds(initialAge) || !isSeconds(lifetime) || !isSeconds(swr) || !isSeconds(sie)) throw new Error('times')
  if (typeof mustRevalidate !== 'boolean' || typeof variant !== 'string' || !isStrings(tags) || typeof keyed !== 'string') throw new Error('flags, variant, tags or key settings')
  if (!isObject(headers)) throw new Error('headers')
  for (const name in headers) {
    const v = headers[name]
    // `__proto__` too: copying the headers (Object.assign) would take it for the object's prototype.
    if (name === '__proto__' || !isToken(name) || !(typeof v === 'string' ? validValue(name, v) : isStrings(v) && v.every(x => validValue(name, x)))) throw new Error(`header ${JSON.stringify(name)}`)
  }
  return { status, headers: headers as Entry['headers'], responseTime, initialAge, lifetime, swr, sie, mustRevalidate, variant, tags, keyed, body }
}

const isToken = (name: string): boolean => passes(() => { validateHeaderName(name) })
const validValue = (name: string, v: string): boolean => passes(() => { validateHeaderValue(name, v) })

function passes (check: () => void): boolean {
  try { check(); return true } catch { return false }
}

export const isMarker = (v: Entry | VaryMarker): v is VaryMarker => 'vary' in v

/**
 * The values last read, by key, from a store that hands back new bytes on every read (Redis):
 * when a read gives the same bytes as the last one, the entry decoded then is used again. So an
 * unchanged entry is one object from hit to hit, as in the memory store: its reply is built once
 * a second, and compress's encoded copies (kept by body) serve its hits. Bounded in bytes, one for
 * all the routes on a store (see recentValues).
 */
export class RecentValues {
  readonly maxBytes: number
  readonly #values: LRUCache<string, { raw: Buffer, value: Entry | VaryMarker }>

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
    this.#values = new LRUCache({ maxSize: maxBytes, sizeCalculation: (v, key) => v.raw.length + key.length })
  }

  /** What it holds: its values' bytes and their keys' lengths. */
  get bytes (): number { return this.#values.calculatedSize }

  /** Throws as decode does. */
  decode (key: string, raw: Buffer): Entry | VaryMarker {
    const known = this.#values.get(key)
    if (known !== undefined && known.raw.equals(raw)) return known.value
    // In a buffer of its own, or kept it would keep what holds it whole: a reply read with others
    // (auto-pipelined) is a slice of one buffer of them all, megabytes for large entries.
    const own = raw.byteOffset === 0 && raw.length === raw.buffer.byteLength ? raw : copy(raw)
    const value = decode(own)
    this.#values.set(key, { raw: own, value })
    return value
  }
}

function copy (b: Buffer): Buffer {
  const out = Buffer.allocUnsafeSlow(b.length)
  b.copy(out)
  return out
}

/** What the values last read from a store may hold, for all its routes. */
const RECENT_BYTES = 8 * 1024 * 1024
const recentByStore = new WeakMap<object, RecentValues>()

/**
 * The RecentValues of a store read over the network: one for every route on it, of this config
 * and of those after reloads that keep the store, so that RECENT_BYTES holds per store however
 * many routes cache into it. (Keys name their route: no route reads another's values.)
 */
export function recentValues (store: object): RecentValues {
  let recent = recentByStore.get(store)
  if (recent === undefined) recentByStore.set(store, recent = new RecentValues(RECENT_BYTES))
  return recent
}
