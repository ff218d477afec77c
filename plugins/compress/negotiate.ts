import { LRUCache } from 'lru-cache'
import { available } from './codings.ts'
import { CODINGS } from './schema.ts'

const IDENTITY = 'identity'
// RFC 9110 12.4.2: `q=` then 0 to 1 with at most three decimals.
const WEIGHT = /^q=(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i
// Elements and parameters read, empty ones counted (browsers send under ten): a header's cost is bounded
// whatever its length. Read whole, `gzip` then 16 KB of `;` cost ~2 ms of the event loop per response.
const MAX_ITEMS = 64
const SEPARATOR = /[,;]/g

/** A coding's name as compared: lower case, x-gzip read as gzip (RFC 9110 8.4.1.3). */
function codingName (token: string): string {
  const name = token.toLowerCase()
  return name === 'x-gzip' ? 'gzip' : name
}

/**
 * The q-values a header gives, by coding (`*` among them); a coding named twice gets the lower. Only
 * its first MAX_ITEMS elements and parameters are read, so that a header's cost is bounded, whatever
 * its length: one longer is read as `identity` (plain only), since a `q=0` in its rest may refuse what
 * `*` or its first entries accept.
 */
function weights (header: string): Map<string, number> {
  const q = new Map<string, number>()
  let coding: string | undefined
  let weight = 1
  for (let at = 0, items = 0; at <= header.length; items++) {
    if (items === MAX_ITEMS) return new Map([[IDENTITY, 1]])
    // test, not exec: no match to allocate; it looks no further than the next separator.
    SEPARATOR.lastIndex = at
    const end = SEPARATOR.test(header) ? SEPARATOR.lastIndex - 1 : header.length
    const token = end === at ? '' : header.slice(at, end).trim()
    if (coding === undefined) {
      coding = codingName(token)
    } else if (coding !== '') {
      const eq = token.indexOf('=')
      const name = eq === -1 ? token : token.slice(0, eq).trimEnd()
      // A q anywhere among the parameters counts; one outside the grammar (`q=0.0001`, `q=0.1e1`, a
      // bare `q`) may have meant a refusal: taken as one, which `*` does not undo.
      if (name === 'q' || name === 'Q') weight = Math.min(weight, WEIGHT.test(token) ? Number(token.slice(2)) : 0)
    }
    if (header[end] !== ';') {
      // The element's end.
      if (coding !== '') q.set(coding, Math.min(weight, q.get(coding) ?? 1))
      coding = undefined
      weight = 1
    }
    at = end + 1
  }
  return q
}

/** RFC 9110 12.5.3: a coding's own q-value, else `*`'s, else 0 (not acceptable). */
const weightOf = (q: ReadonlyMap<string, number>, coding: string): number => q.get(coding) ?? q.get('*') ?? 0

// Browsers send under 100 bytes. A longer value is not cached: any client can send unique ones, up to
// the header limit, and kept they would hold megabytes for nothing.
const MAX_CACHED = 256
/** The last longer value read (one held, not cached): accepts then negotiate on one response read it once. */
let lastLong: { readonly header: string, readonly q: Map<string, number> } | undefined
function longWeights (header: string): Map<string, number> {
  if (lastLong?.header !== header) lastLong = { header, q: weights(header) }
  return lastLong.q
}
const CACHED = 512
// Results depend on the header and the codings offered only: shared by every route offering the same
// (a reload's routes too), so that the memory is bounded once, not per route. `accepts` depends on no offer.
const choices = new Map<string, LRUCache<string, string>>()
const upstreams = new Map<string, LRUCache<string, string>>()
const sharedCache = (caches: Map<string, LRUCache<string, string>>, key: string): LRUCache<string, string> => {
  let cache = caches.get(key)
  if (cache === undefined) { cache = new LRUCache({ max: CACHED }); caches.set(key, cache) }
  return cache
}
const accepted = new LRUCache<string, boolean>({ max: CACHED })

/**
 * Picks the coding for an Accept-Encoding value, by q-value then server preference; `identity` when
 * none applies (no header, identity preferred, nothing acceptable). Results are cached per header
 * value up to MAX_CACHED characters: clients send few distinct ones.
 */
export class EncodingNegotiator {
  readonly #offered: readonly string[]
  readonly #cache: LRUCache<string, string>
  /** The codings this Node decodes, offered ones first, then identity: ties' order in the header sent upstream. */
  readonly #decodable: readonly string[]
  readonly #upstreamCache: LRUCache<string, string>

  /** `offered`: codings in the server's order of preference. */
  constructor (offered: readonly string[]) {
    // identity competes like a coding, last: it wins only with a higher q-value than any offered.
    this.#offered = [...offered, IDENTITY]
    const key = offered.join()
    this.#cache = sharedCache(choices, key)
    this.#decodable = [...offered, ...CODINGS.filter(c => available(c) && !offered.includes(c)), IDENTITY]
    this.#upstreamCache = sharedCache(upstreams, key)
  }

  /**
   * The Accept-Encoding to send upstream for a client's `header`: the codings it accepts that this
   * Node decodes (`*` spelled out), by q-value then the server's order, identity if it named it
   * (`gzip, deflate, br, zstd` on a Node without zstd: `br, gzip, deflate`), so that the upstream
   * never answers in a coding compress cannot decode for other clients, and equivalent headers are
   * one cache variant; `identity` when none is left (`identity;q=0` if the client refused it).
   */
  upstream (header: string): string {
    if (header.length > MAX_CACHED) return this.#forUpstream(longWeights(header))
    let sent = this.#upstreamCache.get(header)
    if (sent === undefined) { sent = this.#forUpstream(weights(header)); this.#upstreamCache.set(header, sent) }
    return sent
  }

  negotiate (header: string | undefined): string {
    if (header === undefined || header === '') return IDENTITY
    if (header.length > MAX_CACHED) return this.#choose(longWeights(header))
    let chosen = this.#cache.get(header)
    if (chosen === undefined) { chosen = this.#choose(weights(header)); this.#cache.set(header, chosen) }
    return chosen
  }

  /** Whether the header accepts `coding` (one of CODINGS), offered or not: an explicit q=0 is not overridden by `*`. */
  accepts (header: string | undefined, coding: string): boolean {
    if (header === undefined || header === '') return false
    if (header.length > MAX_CACHED) return weightOf(longWeights(header), coding) > 0
    const key = `${coding} ${header}`
    let yes = accepted.get(key)
    if (yes === undefined) { yes = weightOf(weights(header), coding) > 0; accepted.set(key, yes) }
    return yes
  }

  #forUpstream (q: ReadonlyMap<string, number>): string {
    const listed: Array<[coding: string, weight: number]> = []
    for (const c of this.#decodable) {
      // identity: its own q-value, else refused by `*;q=0` (RFC 9110 12.5.3), else acceptable unnamed:
      // its refusal is kept, or the upstream would read it acceptable.
      const w = c === IDENTITY ? q.get(c) ?? (q.get('*') === 0 ? 0 : undefined) : weightOf(q, c)
      if (w !== undefined && (w > 0 || c === IDENTITY)) listed.push([c, w])
    }
    // Nothing acceptable left, identity refused: `identity;q=0`, which names no coding either.
    const only = listed.length === 1 ? listed[0] : undefined
    if (listed.length === 0 || (only?.[0] === IDENTITY && only[1] > 0)) return IDENTITY
    // Stable: equal q-values keep the server's order.
    return listed.sort((a, b) => b[1] - a[1]).map(([c, w]) => w === 1 ? c : `${c};q=${w}`).join(', ')
  }

  #choose (q: ReadonlyMap<string, number>): string {
    let chosen = IDENTITY
    let best = 0
    for (const c of this.#offered) {
      const w = weightOf(q, c)
      if (w > best) { best = w; chosen = c }
    }
    return chosen
  }
}
