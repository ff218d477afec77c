import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import { ANONYMOUS_HEADER, type GatewayRequest, type GatewayResponse, type HeaderMap, type PluginHandlers, type PluginReply, type Store, StoreError } from '../../src/index.ts'
import { MAX_LIFETIME, NO_DIRECTIVES, requestDirectives, type Directives } from './cache-control.ts'
import { addCacheStatus, type StatusParams } from './cache-status.ts'
import { isUrlTag, normalizeHost, type KeyBuilder, type RequestKey } from './cache-key.ts'
import { LEFT, type Collapser, type Outcome } from './collapse.ts'
import { asksForLess, describesStored, notModified, notModifiedHeaders, preconditionFailed, rewrittenByCache, sameDate, setValidators, updatedHeaders } from './conditional.ts'
import { currentAge, decode, encodeEntry, encodeMarker, freshness, hasValidator, isMarker, type Entry, type FreshnessRules, type RecentValues, type VaryMarker } from './entry.ts'
import type { CacheMetrics } from './metrics.ts'
import { cachedHeaders, hitReply } from './hit-reply.ts'
import { rangeReply } from './range.ts'
import type { SharedFetch } from './shared-fetch.ts'
import { requestTargets, surrogateTag, type Purge, type TagDeletions } from './purge.ts'
import { policyHeaders } from './targeted.ts'
import { ownFields, unstorableReason, withhold } from './storable.ts'
import { evaluate, staleIfErrorAllows } from './verdict.ts'
import { Capture } from '../shared/body-streams.ts'
import type { StoreErrorLog } from '../shared/store-errors.ts'
import { otherSpelling, variantKey, varyNames } from './vary.ts'

/** A route's cache settings, resolved at setup. */
export interface RouteCacheSettings {
  readonly name: string
  readonly store: Store
  readonly key: KeyBuilder
  /** A fingerprint of the key settings (keyFingerprint): entries stored under others are misses. */
  readonly keyed: string
  readonly methods: ReadonlySet<string>
  readonly statuses: ReadonlySet<number>
  readonly maxObjectSize: number
  readonly rules: FreshnessRules
  readonly keepStaleMs: number
  readonly bypassHeaders: readonly string[]
  /** Whether the request going upstream holds another spelling of a bypass or key header (see compileSpellingBypass). */
  readonly bypassSpellings: ((headers: HeaderMap) => boolean) | undefined
  readonly bypassCookies: ((cookie: string) => boolean) | undefined
  readonly cacheAuthorized: boolean
  /** requestCacheControl: honor. Else a request's directives but no-store change nothing. */
  readonly honorRequestDirectives: boolean
  readonly surrogateHeader: string
  /** Targeted cache-control fields (RFC 9213) this cache follows, lower-case, first found wins. */
  readonly targets: readonly string[]
  readonly collapser: Collapser<Fetched>
  /** On a shared store (Redis): collapsing across the instances that share it. */
  readonly sharedFetch: SharedFetch | undefined
  /** For a store that reads new bytes each time (Redis): see RecentValues. */
  readonly recent: RecentValues | undefined
  /** Tells every route on the store of an invalidation of these URL tags, this one included (see Purger.invalidating). */
  readonly invalidating: (tags: readonly string[]) => void
  /**
   * With server.workers: has the other workers invalidate these URL tags too (see Purger's
   * /invalidate), resolving once they have. At once in one process.
   */
  readonly siblings: (tags: readonly string[]) => Promise<void>
  /** The URL tags the store is deleting for invalidations, run and read by every route on it (see Purger.deletions). */
  readonly deletions: TagDeletions
  /** Whether a newer config caches the route otherwise (see Purger.superseded): what it fetches then is not stored. */
  readonly superseded: () => boolean
  readonly metrics: CacheMetrics
  readonly log: Logger
  /** Store failures, one log each for all the routes on the store (see storeErrorLog). */
  readonly errors: { readonly invalidation: StoreErrorLog, readonly corrupt: StoreErrorLog }
}

type Fwd = NonNullable<StatusParams['fwd']>
type Maybe<T> = T | Promise<T>

/**
 * What a leader shares with the requests collapsed on it: the entry, and the status its upstream
 * answered with (undefined when another instance fetched it). `inPlaceOfError`: a stale entry
 * the leader served for its upstream's error (stale-if-error), which each waiter's own request
 * must allow.
 */
interface Fetched { readonly entry: Entry, readonly fwdStatus: number | undefined, readonly inPlaceOfError?: true }

/** A stored entry updated by the upstream, ready to be written back. */
interface Merged { readonly entry: Entry, readonly names: readonly string[], readonly ttlMs: number, readonly policy: HeaderMap }

/** An upstream's answer captured for the store, with what writing it needs. */
interface Captured { readonly entry: Entry, readonly names: readonly string[], readonly ttlMs: number }

/** What the store holds for a request. */
interface Found { readonly entry?: Entry, readonly varyMiss: boolean }
const NOTHING: Found = { varyMiss: false }
const VARY_MISS: Found = { varyMiss: true }

/** `f` of a value now, or of a promised one later. */
const then = <T, R> (v: Maybe<T>, f: (v: T) => Maybe<R>): Maybe<R> => v instanceof Promise ? v.then(f) : f(v)

/**
 * A fetch (or a revalidation) that may store under `key`, from its lookup until it has written or
 * given up: told of each purge and invalidation of the store meanwhile (see RouteCache.purging).
 */
interface InFlight extends Link {
  readonly key: RequestKey
  /** A purge or invalidation since its lookup selects what it brings: it stores nothing. */
  purged: boolean
  /** The tags of what it brings, once its answer's headers are in (its surrogate keys are known only then). */
  tags: readonly string[] | undefined
  /** Surrogate keys purged before its tags were known (admin purges only: invalidations name URLs). */
  purgedKeys?: string[]
  /** What comes before it in its route's Fetching; undefined when not in it. */
  prev: Link | undefined
}
interface Link { next: InFlight | undefined }

/** A GET or HEAD the cache looked up, carried from onRequest to onResponse in req.locals. */
interface Lookup extends InFlight {
  readonly noStore: boolean
  /**
   * When it stops waiting for other requests' fetches (performance.now()): twice collapseTimeout
   * from its lookup, for a wait and a take-over, whatever chain of flights it meets (see index.ts).
   */
  readonly until: number
  fwd: Fwd
  detail?: string
  /** The stored response being revalidated. */
  entry?: Entry
  /** Set when this request fetches for the others waiting on its key (`keep`: see Collapser.lead). */
  lead?: (e: Outcome<Fetched>, keep?: boolean) => void
  /** The exchange is over (onFinished): a request whose client left never leads. */
  over?: true
  /** A waiter its leader handed the fetch to (LEFT): if it leads, its own LEFT releases its waiters (see Collapser.lead). */
  handedOver?: true
  /** Its upstream's body was cut short before it was captured: onFinished tells by whom. */
  bodyCut?: true
  /** On a shared store, when this request fetches the key for every instance: gives the fetch back (see SharedFetch, READING_MS). */
  giveBack?: () => void
  /** Its answer is being written to the store: the fetch is given back (and no longer told of purges) once it is there, not at the end of the exchange. */
  saving?: true
  /** Its upstream's answer, captured whole: stored when the exchange ends, unless its bytes proved bad on the way (see spoilt). */
  captured?: Captured
  /** The stored response it was answered with (a hit, a collapsed one): dropped if its bytes prove bad on the way. */
  served?: Entry
  /** When it went upstream (ms since the epoch): the start of the response delay that counts in its age. */
  requestTime?: number
  /** Its headers as they reached the cache, before its validators: what a stored answer's variant is keyed on. */
  reached?: HeaderMap
}

const LOCALS = 'cache'
// Safe by their definitions (RFC 9110 9.2.1, IANA's method registry); any other method, one of
// unknown safety included, invalidates on success (RFC 9111 4.4).
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'REPORT', 'SEARCH', 'QUERY', 'PRI'])
/** States that need nothing but a Cache-Status line (and, for unsafe methods, invalidation). */
const METHOD = 'method'
const BYPASS = 'bypass'
/** A GET or HEAD with a body (a search API's query, say): its answer may depend on it, which no key holds. */
const WITH_BODY = 'request-body'
/** Credentials without cacheAuthorized: said in Cache-Status, as the reason a route with auth does not cache. */
const CREDENTIALS = 'credentials'
/** An upgrade (WebSocket): a stored answer is not its answer, and its answer is not plain requests'. */
const UPGRADE = 'upgrade'
/** A query with a parameter the key leaves out that the upstream may read as one it keeps (see RequestKey.ambiguous). */
const AMBIGUOUS = 'ambiguous-query'
/** A Lookup's detail when the store could not be read. */
const STORE_DOWN = 'store-unavailable'
/** A waiter's detail when it was served its leader's stale entry in place of an upstream error. */
const STALE_IF_ERROR = 'stale-if-error'
/** An answer a purge or invalidation since its lookup selects, known before its headers went out: not stored (see #save). */
const PURGED = 'purged'
/** An answer with no time left to keep it (stale on arrival, nothing to revalidate with or no stale window): not stored. */
const NO_FRESHNESS = 'no-freshness'
/** A request holding another spelling of a field the answer varies on (see #unstorable): this client's only. */
const VARY_SPELLING = 'vary-spelling'
/** A bypass header or cookie a plugin after the cache put in the request sent upstream (see #bypassedAfter): this client's only. */
const BYPASSED_AFTER = 'bypass'
/**
 * Reasons not to store an answer that are the request's, not the stored entry's: its no-store, or
 * a spelling or bypass field any client can have sent (`x_tenant: evil`), which would otherwise drop the shared entry.
 */
const keepsEntry = (reason: string | undefined): boolean => reason === 'no-store' || reason === VARY_SPELLING || reason === BYPASSED_AFTER
type State = Lookup | typeof METHOD | typeof BYPASS | typeof WITH_BODY | typeof CREDENTIALS | typeof UPGRADE | typeof AMBIGUOUS

// Response headers never stored: per client, per hop, or recomputed on every answer.
const NOT_STORED = ['set-cookie', 'x-request-id', 'age', 'cache-status']
/** The errors a stale response may stand in for (RFC 5861 4); any other status is an answer, forwarded (and stored when it may be). */
const STALE_ERRORS = new Set([500, 502, 503, 504])

/**
 * How long after its upstream's bytes are all captured a leader whose client still reads them keeps
 * the fetch for the other instances: they wait no longer for its client, and fetch the key again. A
 * client that reads at once ends the exchange well within it, and the fetch then goes back once
 * the entry is written (the others find it: one upstream request for all).
 */
const READING_MS = 100
const giveBackIfReading = (state: Lookup): void => { if (state.over !== true) state.giveBack?.() }

/** How often invalidations a store failure stopped are tried again, and how many a route keeps for that. */
const RETRY_MS = 1_000
const MAX_UNFINISHED = 1_000
/**
 * How long an unsafe request's response waits for its invalidation's deletion: one of a few keys
 * (thousands on Redis) is done by then, and a client reading right after its write misses.
 */
const INVALIDATION_WAIT_MS = 100

/**
 * A route's fetches under way, linked through themselves: joining and leaving allocate nothing (a
 * Set's entries would, rehashed as misses come and go), and a purge walks them.
 */
class Fetching {
  readonly #head: Link = { next: undefined }

  add (f: InFlight): void {
    if (f.prev !== undefined) return
    const next = this.#head.next
    f.prev = this.#head
    f.next = next
    if (next !== undefined) next.prev = f
    this.#head.next = f
  }

  delete (f: InFlight): void {
    const prev = f.prev
    if (prev === undefined) return
    prev.next = f.next
    if (f.next !== undefined) f.next.prev = prev
    f.prev = f.next = undefined
  }

  purging (p: Purge): void {
    for (let f = this.#head.next; f !== undefined; f = f.next) if (!f.purged) tell(f, p)
  }
}

/**
 * Tells `f` of a purge: marked purged when it selects what `f` brings. A surrogate key, before
 * `f`'s answer has named its own, is kept on `f` until then (see tagged).
 */
function tell (f: InFlight, p: Purge): void {
  const tag = p.tag
  if (p.prefix !== undefined) f.purged = f.key.primary.startsWith(p.prefix)
  else if (tag === undefined || tag === f.key.urlTag) f.purged = true
  else if (f.tags !== undefined) f.purged = f.tags.includes(tag)
  else if (!isUrlTag(tag)) (f.purgedKeys ??= []).push(tag)
}

/** What `f` brings carries `tags`: a surrogate key purged before they were known selects it now. */
function tagged (f: InFlight, tags: readonly string[]): boolean {
  f.tags = tags
  if (f.purgedKeys !== undefined) {
    if (f.purgedKeys.some(k => tags.includes(k))) f.purged = true
    f.purgedKeys = undefined
  }
  return f.purged
}

/** The cache of one route: its hooks and the work they start. */
export class RouteCache implements PluginHandlers {
  readonly #s: RouteCacheSettings
  /** Entries under background revalidation (stale-while-revalidate runs once per entry at a time). */
  readonly #refreshing = new Set<string>()
  /** URL tags whose invalidation a store failure stopped: tried again every second until the store takes them. */
  readonly #unfinished = new Set<string>()
  #retry: NodeJS.Timeout | undefined
  #disposed = false
  /** Its entries from an earlier config are being dropped (see dropping). */
  #dropping = false
  /**
   * Its fetches under way (bounded by the requests in flight, and one background revalidation per
   * entry): what a purge is checked against when it comes, no history of purges being kept.
   */
  readonly #fetching = new Fetching()
  readonly #invalidationErrors: StoreErrorLog
  readonly #corruptEntries: StoreErrorLog

  constructor (settings: RouteCacheSettings) {
    this.#s = settings
    this.#invalidationErrors = settings.errors.invalidation
    this.#corruptEntries = settings.errors.corrupt
  }

  /**
   * A purge is about to delete what it selects from the store: what this instance is fetching
   * meanwhile (begun before it) is neither stored nor given to requests that come after it, as a
   * Varnish ban tests busy objects too. Other instances sharing the store are not told.
   */
  purging (p: Purge): void {
    this.#fetching.purging(p)
    // A flight's URL tag is known from its key; its surrogate keys only once the response is in:
    // a purge of one of those detaches every flight.
    this.#s.collapser.detach((key, tag) => p.prefix !== undefined ? key.startsWith(p.prefix) : p.tag === undefined || !isUrlTag(p.tag) || p.tag === tag)
  }

  /** Its entries from an earlier config are being dropped, as its config goes into service (see Purger.inService): its lookups miss until `done`. */
  dropping (done: Promise<void>): void {
    this.#dropping = true
    void done.then(() => { this.#dropping = false })
  }

  /** The config is replaced or the gateway stops: invalidations still unfinished are left (their entries expire). */
  dispose (): void {
    this.#disposed = true
    clearTimeout(this.#retry)
  }

  onRequest (req: GatewayRequest): Maybe<PluginReply | undefined> {
    const s = this.#s
    if (!s.methods.has(req.method)) { req.locals[LOCALS] = METHOD; return }
    const skip = req.upgrade ? UPGRADE : !s.cacheAuthorized && credentialed(req) ? CREDENTIALS : this.#bypassed(req) ? BYPASS : req.hasBody ? WITH_BODY : undefined
    if (skip !== undefined) { req.locals[LOCALS] = skip; s.metrics.requests.bypass.inc(); return }
    // Keyed on the request as it goes upstream (plugins before the cache, auth among them, set
    // headers the upstream may vary on, or change its path); the Host and directives are the client's.
    const key = s.key(req.path, req.query, req.clientHeaders.host, req.headers, req.upstreamPath)
    if (key.ambiguous === true) { req.locals[LOCALS] = AMBIGUOUS; s.metrics.requests.bypass.inc(); return }
    const cc = requestDirectives(req.clientHeaders)
    const rcc = s.honorRequestDirectives ? cc : NO_DIRECTIVES
    const state: Lookup = { key, noStore: cc['no-store'] !== undefined, purged: false, tags: undefined, prev: undefined, next: undefined, until: performance.now() + 2 * s.collapser.timeoutMs, fwd: 'uri-miss' }
    req.locals[LOCALS] = state
    // Synchronous on a memory store: a hit is answered without a promise.
    let found: Maybe<Found>
    try {
      found = this.#find(state.key, req)
    } catch (err) {
      return this.#unavailable(req, state, rcc, err)
    }
    if (!(found instanceof Promise)) return this.#lookedUp(req, state, rcc, found)
    // A purge while the store is read may select what it finds, or what it then fetches.
    this.#fetching.add(state)
    return found.then(f => this.#lookedUp(req, state, rcc, f), (err: unknown) => this.#unavailable(req, state, rcc, err))
  }

  onResponse (res: GatewayResponse, req: GatewayRequest): Promise<void> | undefined {
    const state = req.locals[LOCALS] as State | undefined
    if (state === undefined) return
    const s = this.#s
    if (state === WITH_BODY || state === CREDENTIALS || state === UPGRADE || state === AMBIGUOUS) { addCacheStatus(res.headers, s.name, { fwd: 'bypass', detail: state }); return }
    if (state === METHOD || state === BYPASS) {
      addCacheStatus(res.headers, s.name, { fwd: state })
      if (res.fromUpstream && res.status < 400 && !SAFE.has(req.method)) return this.#invalidate(req, res.headers)
      return
    }
    return this.#answered(res, req, state)
  }

  /**
   * However the request ended: a leader that never answered (its client left, a plugin failed)
   * hands the fetch on; one whose body was cut otherwise than by its client releases its waiters.
   * What it captured is stored now, once its bytes went all the way (or its client left), and its
   * flight, kept for the requests that came meanwhile, ends once it is written; a stored response
   * whose bytes a hit found bad goes.
   */
  onFinished (req: GatewayRequest, status: number, cut: string | undefined): void {
    const state = req.locals[LOCALS] as State | undefined
    if (typeof state !== 'object') return
    state.over = true
    const { captured, served } = state
    if (captured !== undefined && !spoilt(captured.entry, status, cut)) {
      void this.#save(state, captured.entry, captured.names, captured.ttlMs).finally(() => {
        state.lead?.(LEFT)
        state.giveBack?.()
      })
      return
    }
    // A body cut for another reason than its client (the upstream broke it, a timeout, a plugin) releases
    // the waiters: the next leader would likely meet the same fault, and they would go one at a time.
    state.lead?.(state.bodyCut === true && status !== 499 && cut?.startsWith('client_') !== true ? undefined : LEFT)
    if (served !== undefined && spoilt(served, status, cut)) void this.#drop(state.key, served)
    if (state.saving === true) return
    state.giveBack?.()
    this.#fetching.delete(state)
  }

  /**
   * Whether a bypass header or cookie is in the request the upstream gets (one a plugin before the
   * cache renamed or set: its answer is as private) or in the client's (one a plugin removed: the
   * client still asked not to share). Other spellings only matter to the upstream: its request's.
   */
  #bypassed (req: GatewayRequest): boolean {
    const s = this.#s
    const client = req.clientHeaders
    for (const name of s.bypassHeaders) if (client[name] !== undefined) return true
    const own = client.cookie
    if (own !== undefined && s.bypassCookies?.(own) === true) return true
    // Read again only when a plugin changed it.
    return this.#bypassedSent(req.headers, own)
  }

  /** Whether the request as it goes upstream holds a bypass header, cookie (its Cookie read unless it is `checked`) or spelling. */
  #bypassedSent (sent: HeaderMap, checked: HeaderMap[string]): boolean {
    const s = this.#s
    for (const name of s.bypassHeaders) if (sent[name] !== undefined) return true
    const up = sent.cookie
    if (up !== undefined && up !== checked && s.bypassCookies?.(typeof up === 'string' ? up : up.join('; ')) === true) return true
    return s.bypassSpellings?.(sent) === true
  }

  /**
   * Whether a plugin after the cache (onRequest below its priority, onUpstreamTry) put a bypass
   * header, cookie or spelling in the request the upstream got, after the lookup: its answer is that
   * request's, not stored nor handed to waiters. Read at the response, on the miss path only.
   */
  #bypassedAfter (req: GatewayRequest, state: Lookup): string | undefined {
    const reached = state.reached
    return reached !== undefined && this.#bypassedSent(req.headers, reached.cookie) ? BYPASSED_AFTER : undefined
  }

  /**
   * The store is down: as a miss that stores nothing. only-if-cached gets its 504, and concurrent
   * misses still collapse in this process (the collapser needs no store).
   */
  #unavailable (req: GatewayRequest, state: Lookup, rcc: Directives, err: unknown): Maybe<PluginReply | undefined> {
    this.#s.log.debug({ err }, 'cache store unavailable')
    state.fwd = 'bypass'
    state.detail = STORE_DOWN
    return this.#lookedUp(req, state, rcc, NOTHING)
  }

  /** What the store held for the request decides: a hit, a 504 for only-if-cached, or upstream (maybe after a concurrent fetch of the key). */
  #lookedUp (req: GatewayRequest, state: Lookup, rcc: Directives, found: Found): Maybe<PluginReply | undefined> {
    // Its client left during the read: onFinished, which unlinks it and hands a lead on, has run,
    // so it is neither linked (it would stay, walked by every purge) nor a leader (its waiters would wait it out).
    if (state.over === true) return undefined
    const s = this.#s
    const entry = found.entry
    if (found.varyMiss) state.fwd = 'vary-miss'
    if (entry !== undefined) {
      const verdict = evaluate(entry, rcc, Date.now(), s.rules)
      if (verdict === 'fresh' || verdict === 'stale-ok' || verdict === 'swr') {
        // Not for a request with no-store: it would go with the revalidation, whose answer could
        // then not be stored, and the entry would be dropped.
        if (verdict === 'swr' && !state.noStore) this.#refreshInBackground(req, state, entry)
        s.metrics.requests[verdict === 'fresh' ? 'hit' : 'stale'].inc()
        state.served = entry
        return this.#hit(req, entry)
      }
      state.fwd = verdict
      state.entry = entry
    }
    this.#fetching.add(state)
    if (rcc['only-if-cached'] !== undefined) {
      s.metrics.requests[state.detail === STORE_DOWN ? 'bypass' : 'unsatisfiable'].inc()
      return onlyIfCached(s.name, state.fwd)
    }
    if (req.method === 'GET' && !state.noStore) return this.#collapseOrLead(req, state, rcc)
    this.#toUpstream(req, state)
    return undefined
  }

  /** Waits for another request's fetch of the key, or fetches it for those that come next. */
  #collapseOrLead (req: GatewayRequest, state: Lookup, rcc: Directives): Maybe<PluginReply | undefined> {
    const s = this.#s
    const pending = s.collapser.waitFor(state.key.primary)
    if (pending !== undefined) return this.#collapsed(req, state, rcc, pending)
    // A ranged or conditional miss may wait for a whole answer, not lead: its upstream's 206, 304
    // or 412 is not stored, so the requests behind it would all go upstream in turn. (A stale
    // entry's revalidation asks with the entry's validators instead, and may lead.)
    if (state.entry === undefined && asksForLess(req.clientHeaders)) { this.#toUpstream(req, state); return undefined }
    state.lead = s.collapser.lead(state.key.primary, state.key.urlTag, state.handedOver)
    // While its URL's lookups miss (see #find), so would the polls for another instance's fetch, one
    // begun before the write among them: fetched here.
    if (s.sharedFetch !== undefined && state.detail !== STORE_DOWN && !s.deletions.has(state.key.urlTag)) return this.#fetchOnce(req, state, rcc, s.sharedFetch)
    this.#toUpstream(req, state)
    return undefined
  }

  /**
   * On a shared store, this instance's leader takes the key's fetch for every instance, or polls
   * the store for what the instance fetching it stores. Nothing fitting there and the fetch given
   * back (that instance stored nothing), or collapseTimeout past: upstream itself.
   */
  async #fetchOnce (req: GatewayRequest, state: Lookup, rcc: Directives, shared: SharedFetch): Promise<PluginReply | undefined> {
    const giveBack = await shared.take(state.key.primary, req.id)
    // Its client left while the fetch was being taken: onFinished has run, nothing else would give it back.
    if (state.over === true) { giveBack?.(); return undefined }
    if (giveBack !== undefined) {
      state.giveBack = giveBack
      this.#toUpstream(req, state)
      return undefined
    }
    // No longer than the fetch can be held, nor past the request's own bound; the reads after the
    // last sleep are the last.
    const deadline = Math.min(performance.now() + shared.ttlMs, state.until)
    for (let wait = 10; state.over !== true; wait = Math.min(2 * wait, 200)) {
      const left = deadline - performance.now()
      if (left <= 0) break
      await new Promise(resolve => setTimeout(resolve, Math.min(wait, left)))
      // Whether the fetch is still held, known before the store is read: the instance fetching it
      // stores, then gives it back, so what it stored between the two is found by this read.
      const held = await shared.held(state.key.primary)
      let found: Found
      try { found = await this.#find(state.key, req) } catch { break }
      const e = found.entry
      if (e !== undefined && evaluate(e, rcc, Date.now(), this.#s.rules) === 'fresh') {
        // Which status the other instance's upstream answered with is not known here.
        state.lead?.({ entry: e, fwdStatus: undefined })
        this.#s.metrics.requests.collapsed.inc()
        return this.#hit(req, e, state)
      }
      if (!held) break
    }
    this.#toUpstream(req, state)
    return undefined
  }

  /** Another request is fetching this key: its stored answer when it fits, else upstream. */
  async #collapsed (req: GatewayRequest, state: Lookup, rcc: Directives, pending: Promise<Outcome<Fetched>>): Promise<PluginReply | undefined> {
    const fetched = await by(pending, state.until)
    if (fetched === LEFT) {
      if (state.over === true) return undefined
      state.handedOver = true
      return this.#collapseOrLead(req, state, rcc)
    }
    const e = fetched?.entry
    if (fetched === undefined || e === undefined || e.variant !== variantFor(e, req)) { this.#toUpstream(req, state); return undefined }
    const s = this.#s
    const now = Date.now()
    if (fetched.inPlaceOfError === true ? staleIfErrorAllows(e, currentAge(e, now), rcc, s.rules) : evaluate(e, rcc, now, s.rules) === 'fresh') {
      if (fetched.inPlaceOfError === true) state.detail = STALE_IF_ERROR
      s.metrics.requests[fetched.inPlaceOfError === true ? 'stale' : 'collapsed'].inc()
      return this.#hit(req, e, state, fetched.fwdStatus)
    }
    this.#toUpstream(req, state)
    return undefined
  }

  #toUpstream (req: GatewayRequest, state: Lookup): void {
    state.requestTime = Date.now()
    state.reached = { ...req.headers }
    if (state.entry !== undefined) setValidators(req.headers, state.entry.headers)
  }

  /**
   * The stored response for a request: through the Vary marker to the variant when there is one.
   * None while an invalidation of its URL is being deleted, or not yet confirmed by the other
   * workers on a shared store (see TagDeletions.hold): what is there may be from before the write;
   * nor while the route's entries from an earlier config are (see dropping).
   */
  #find (key: RequestKey, req: GatewayRequest): Maybe<Found> {
    if (this.#dropping || this.#s.deletions.has(key.urlTag)) return NOTHING
    const primary = key.primary
    return then(this.#read(primary), raw => {
      const first = raw === undefined ? undefined : this.#decode(primary, raw)
      // Stored under other key settings (a string compared per hit): a miss, the answer fetched stored in its place.
      if (first === undefined || (!isMarker(first) && first.keyed !== this.#s.keyed)) return NOTHING
      if (!isMarker(first)) return selects(first, req, NO_NAMES, '') ? { entry: first, varyMiss: false } : VARY_MISS
      const v = variantKey(first.vary, req.headers, req.clientHeaders.host)
      const variant = primary + v
      return then(this.#read(variant), second => {
        const entry = second === undefined ? undefined : this.#decode(variant, second)
        return entry === undefined || isMarker(entry) || entry.keyed !== this.#s.keyed || !selects(entry, req, first.vary, v) ? VARY_MISS : { entry, varyMiss: false }
      })
    })
  }

  /** A value that cannot be read is a miss, and goes: the answer fetched for it (if stored) takes its place. */
  #decode (key: string, raw: Buffer): Entry | VaryMarker | undefined {
    const recent = this.#s.recent
    try {
      return recent === undefined ? decode(raw) : recent.decode(key, raw)
    } catch (err) {
      return this.#corrupt(key, err)
    }
  }

  /** Counts, logs and deletes a value the cache cannot read: the lookup finds nothing there. */
  #corrupt (key: string, err: unknown): undefined {
    this.#s.metrics.corruptEntries.inc()
    this.#corruptEntries.report(new Error(`${(err as Error).message}: ${key}`))
    void this.#s.store.delete(key).catch(() => 0)
    return undefined
  }

  #read (key: string): Maybe<Buffer | undefined> {
    const store = this.#s.store
    if (store.getNow !== undefined) return store.getNow(key)
    // An error answered for the key (WRONGTYPE: another writer's hash under it) is its value's
    // fault, not an outage: else the URL would bypass the cache for as long as the key stays.
    return store.get(key).catch((err: unknown) => {
      if (keyFault(err)) return this.#corrupt(key, err)
      throw err
    })
  }

  /**
   * A stored entry's answer. `collapsed`: the lookup of a request answered from another's fetch
   * (what it found, and the store it could not read), with the status that fetch got upstream.
   */
  #hit (req: GatewayRequest, e: Entry, collapsed?: Lookup, fwdStatus?: number): PluginReply {
    if (collapsed !== undefined) collapsed.served = e
    const age = currentAge(e, Date.now())
    if (successful(e) && preconditionFailed(req.clientHeaders, e.headers)) {
      const headers: HeaderMap = {}
      addCacheStatus(headers, this.#s.name, statusOf(e, age, collapsed, fwdStatus))
      return { status: 412, headers }
    }
    if (e.status === 200 && notModified(req.clientHeaders, e.headers)) {
      const headers = notModifiedHeaders(e.headers)
      headers.age = String(Math.floor(age))
      addCacheStatus(headers, this.#s.name, statusOf(e, age, collapsed, fwdStatus))
      return { status: 304, headers }
    }
    // Only GETs wait on another request's fetch (see #lookedUp): the body always goes.
    const whole = collapsed !== undefined ? { status: e.status, headers: cachedHeaders(e, this.#s.name, age, statusOf(e, age, collapsed, fwdStatus)), body: e.body } : hitReply(e, this.#s.name, age, req.method)
    return req.clientHeaders.range === undefined ? whole : rangeReply(req, e, whole.headers ?? {}) ?? whole
  }

  /** The response to a GET or HEAD that went upstream (or that the gateway answered with an error). */
  #answered (res: GatewayResponse, req: GatewayRequest, state: Lookup): Promise<void> | undefined {
    const s = this.#s
    const e = state.entry
    if (e !== undefined && res.fromUpstream && res.status === 304) return this.#revalidated(res, req, state, e)
    if (e !== undefined && res.fromUpstream && res.status === 200 && req.method === 'HEAD' && describedByHead(res.headers, e)) return this.#headed(res, req, state, e)
    if (e !== undefined && STALE_ERRORS.has(res.status)) {
      const age = currentAge(e, Date.now())
      if (staleIfErrorAllows(e, age, s.honorRequestDirectives ? requestDirectives(req.clientHeaders) : NO_DIRECTIVES, s.rules)) {
        // The waiters would most likely meet the same error: they get the entry too, if their requests allow it.
        state.lead?.({ entry: e, fwdStatus: res.status, inPlaceOfError: true })
        s.metrics.requests.stale.inc()
        // Not `served`: the exchange's failure would be the upstream's error body's (cut, reset), not the entry's.
        replaceResponse(res, e, e.headers)
        addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: res.status, ttl: e.lifetime - age, detail: STALE_IF_ERROR })
        res.status = e.status
        res.headers.age = String(Math.floor(age))
        return
      }
      // Disconnected and not allowed to serve stale (RFC 9111 4.2.4, 5.2.2.2): 504, never the stale body.
      if (e.mustRevalidate && !res.fromUpstream) res.status = 504
    }
    s.metrics.requests[missOrBypass(state)].inc()
    this.#store(res, req, state)
    return undefined
  }

  /**
   * Stores a fresh upstream response while it streams to the client, when the rules allow. With
   * the store down, nothing is stored: the response is only captured for the requests waiting on it.
   */
  #store (res: GatewayResponse, req: GatewayRequest, state: Lookup): void {
    const s = this.#s
    const fwdStatus = res.status
    const length = Number(res.headers['content-length'])
    const down = state.detail === STORE_DOWN
    const reason = down && state.lead === undefined ? STORE_DOWN
      : !res.fromUpstream ? 'gateway-error'
      : state.noStore ? 'no-store'
        : req.method !== 'GET' ? 'head'
          : res.closeDelimited ? 'close-delimited'
            : length > s.maxObjectSize ? 'too-large'
              : this.#storeVerdict(req, state, res.status, res.headers) ?? this.#changedAfter(req, state, res.headers.vary)
    const prepared = reason === undefined ? this.#prepare(res.status, res.headers, state.reached as HeaderMap, req.clientHeaders.host, state.key, state.requestTime) : undefined
    delete res.headers[s.surrogateHeader]
    if (prepared === undefined) {
      state.lead?.(undefined)
      // The stored response is replaced by one that may not be kept: drop it (not for another spelling's answer, this client's only).
      if (state.entry !== undefined && res.fromUpstream && res.status < 500 && reason !== VARY_SPELLING && reason !== BYPASSED_AFTER) void this.#drop(state.key, state.entry)
      addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus, detail: down ? STORE_DOWN : reason ?? NO_FRESHNESS })
      return
    }
    // The waiters get the entry as soon as the upstream has sent it (they get what this request
    // got, a body that proves bad included), and so do the requests that come in this process
    // while its client still reads (the flight is kept); the store, once the exchange ends
    // (onFinished): a stream after the capture (compress decoding the body) may still find the
    // bytes bad. The other instances wait for this client READING_MS at most.
    res.pipeThrough(new Capture(s.maxObjectSize, (body, tooLarge) => {
      const e = body === undefined ? undefined : prepared.entry(body)
      if (e === undefined) {
        // Cut short: whether one waiter fetches for the others depends on who cut it, known in onFinished.
        if (tooLarge) state.lead?.(undefined)
        else state.bodyCut = true
        state.giveBack?.()
        return
      }
      state.lead?.({ entry: e, fwdStatus }, true)
      if (!down) state.captured = { entry: e, names: prepared.names, ttlMs: prepared.ttlMs }
      if (state.giveBack !== undefined) setTimeout(giveBackIfReading, READING_MS, state).unref()
    }))
    const purged = this.#purged(state, prepared.tags)
    addCacheStatus(res.headers, s.name, down || purged ? { fwd: state.fwd, fwdStatus, detail: down ? STORE_DOWN : PURGED } : { fwd: state.fwd, fwdStatus, stored: true, ttl: prepared.ttl })
  }

  /** A 304 to the cache's revalidation: the stored response, with updated headers, freshened. */
  async #revalidated (res: GatewayResponse, req: GatewayRequest, state: Lookup, e: Entry): Promise<void> {
    const s = this.#s
    // A 304 about another representation updates nothing: this client gets the stored response
    // as it was (the 304 did answer its validators), and the entry goes.
    const merged = describesStored(res.headers, e.headers) ? this.#merge(e, res.headers, state.requestTime, state.reached as HeaderMap, req.clientHeaders.host) : undefined
    const entry = merged?.entry ?? e
    state.served = entry
    const own = merged === undefined ? {} : ownFields(res.headers, merged.policy)
    // The request's no-store (or spelling) forbids storing this answer: the entry stays as it was. The 304 may
    // make the response one not to be stored (private, no-store), or leave it no time to be kept
    // (max-age=0 with must-revalidate, a large Age): this client gets it, no other.
    const reason = merged === undefined ? 'validator-mismatch' : state.noStore ? 'no-store' : this.#storeVerdict(req, state, e.status, entry.headers) ?? noTimeLeft(merged)
    state.lead?.(reason === undefined ? { entry, fwdStatus: 304 } : undefined)
    s.metrics.requests[reason === undefined ? 'revalidated' : 'miss'].inc()
    delete res.headers[s.surrogateHeader]
    const age = currentAge(entry, Date.now())
    if (successful(e) && preconditionFailed(req.clientHeaders, entry.headers)) {
      replaceHeaders(res.headers, {})
      res.status = 412
    } else if (e.status === 200 && notModified(req.clientHeaders, entry.headers)) {
      replaceHeaders(res.headers, notModifiedHeaders(entry.headers))
    } else {
      const part = req.clientHeaders.range === undefined ? undefined : rangeReply(req, entry, entry.headers)
      if (part === undefined) {
        replaceResponse(res, e, entry.headers)
        res.status = e.status
      } else {
        replaceHeaders(res.headers, part.headers)
        res.replaceBody(part.body)
        res.status = part.status
      }
    }
    Object.assign(res.headers, own)
    res.headers.age = String(Math.floor(age))
    if (reason !== undefined || merged === undefined) {
      addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: 304, detail: reason })
      if (!keepsEntry(reason)) await this.#drop(state.key, e)
      return
    }
    // Not put back into the store (nor dropped: what a request after the purge stored may be there).
    if (this.#purged(state, entry.tags)) { addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: 304, detail: PURGED }); return }
    addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: 304, stored: true, ttl: entry.lifetime - age })
    state.saving = true
    await this.#freshen(state, e, merged)
    state.giveBack?.()
  }

  /**
   * A 200 to a HEAD that found a stored GET and has its validators (RFC 9111 4.3.5): the stored
   * response is updated with its headers and freshened, as by a 304; the client gets the HEAD's
   * answer as it came. (One that does not describe the stored response drops it, in #store.)
   */
  async #headed (res: GatewayResponse, req: GatewayRequest, state: Lookup, e: Entry): Promise<void> {
    const s = this.#s
    delete res.headers[s.surrogateHeader]
    const merged = state.noStore ? undefined : this.#merge(e, res.headers, state.requestTime, state.reached as HeaderMap, req.clientHeaders.host)
    const reason = merged === undefined ? 'no-store' : this.#storeVerdict(req, state, e.status, merged.entry.headers) ?? noTimeLeft(merged)
    s.metrics.requests[reason === undefined ? 'revalidated' : 'miss'].inc()
    if (reason !== undefined || merged === undefined) {
      addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: 200, detail: reason })
      if (!keepsEntry(reason)) await this.#drop(state.key, e)
      return
    }
    if (this.#purged(state, merged.entry.tags)) { addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: 200, detail: PURGED }); return }
    addCacheStatus(res.headers, s.name, { fwd: state.fwd, fwdStatus: 200, stored: true, ttl: merged.entry.lifetime - currentAge(merged.entry, Date.now()) })
    state.saving = true
    await this.#freshen(state, e, merged)
  }

  /**
   * The stored response updated with the headers of a 304 (or a HEAD's 200) received now, and
   * freshened. Its variant follows the Vary it has now (a 304 may add or change one): the request
   * that revalidated it (`reqHeaders`, `host`) is the one it was selected for.
   */
  #merge (e: Entry, fresh: HeaderMap, requestTime: number | undefined, reqHeaders: HeaderMap, host: string | string[] | undefined): Merged {
    const now = Date.now()
    const headers = updatedHeaders(e.headers, fresh)
    // A 304's surrogate keys are not kept either (the entry keeps the tags it was stored with).
    delete headers[this.#s.surrogateHeader]
    // Without a Date of its own the update is dated when it came (RFC 9110 6.6.1): the stored
    // response's age starts again from it (RFC 9111 4.3.4), not from the Date stored before.
    if (fresh.date === undefined) headers.date = new Date(now).toUTCString()
    const policy = { ...policyHeaders(headers, this.#s.targets), age: fresh.age }
    const f = freshness(e.status, policy, now, this.#s.rules, requestTime)
    withhold(headers, policy)
    const names = varyNames(headers.vary)
    const variant = names.length === 0 ? '' : variantKey(names, reqHeaders, host)
    return { entry: { ...e, ...f, headers, responseTime: now, variant }, names, ttlMs: this.#ttlMs(f, headers), policy }
  }

  /** Writes a freshened entry; one whose variant changed leaves its old place (the primary key's is written over anyway). */
  async #freshen (f: InFlight, old: Entry, m: Merged): Promise<void> {
    if (old.variant !== m.entry.variant && old.variant !== '') await this.#drop(f.key, old)
    await this.#save(f, m.entry, m.names, m.ttlMs)
  }

  /**
   * A plugin after the cache changed what the key or the response's Vary reads (the upstream path,
   * the query, a header): the answer is the upstream's to another request than the one looked up,
   * so it is not stored.
   */
  #changedAfter (req: GatewayRequest, state: Lookup, vary: HeaderMap[string]): string | undefined {
    const key = this.#s.key(req.path, req.query, req.clientHeaders.host, req.headers, req.upstreamPath)
    if (key.primary !== state.key.primary || key.ambiguous === true) return 'key-changed'
    const reached = state.reached as HeaderMap
    for (const name of varyNames(vary)) {
      if (rewrittenByCache(name)) continue // Vary: * never gets here: it is not stored
      if (variantKey([name], reached) !== variantKey([name], req.headers)) return 'vary-changed'
    }
    return undefined
  }

  /** Why a GET's answer to this client's request may not be stored: a late bypass, or #unstorable. */
  #storeVerdict (req: GatewayRequest, state: Lookup, status: number, headers: HeaderMap): string | undefined {
    return this.#bypassedAfter(req, state) ?? this.#unstorable(req, status, headers)
  }

  /** Why a response may not be stored, read through the targeted fields this cache follows. */
  #unstorable (req: GatewayRequest, status: number, headers: HeaderMap): string | undefined {
    // Credentials count as the request's Authorization (RFC 9111 3.5): one a plugin set (read here,
    // after the plugins that ran past the cache too), or a consumer an auth plugin identified.
    const request = req.clientHeaders.authorization === undefined && credentialed(req) ? { ...req.clientHeaders, authorization: 'credentials' } : req.clientHeaders
    return unstorableReason('GET', req.path + req.query, request, status, policyHeaders(headers, this.#s.targets), this.#s.statuses) ??
      // Its variant would hold the spelling the upstream may not have read: this client's only.
      (otherSpelling(headers.vary, req.headers) === undefined ? undefined : VARY_SPELLING)
  }

  /** What storing a response needs besides its body; undefined when it would be stale on arrival with nothing to revalidate. */
  #prepare (status: number, resHeaders: HeaderMap, reqHeaders: HeaderMap, host: string | string[] | undefined, key: RequestKey, requestTime: number | undefined) {
    const s = this.#s
    const now = Date.now()
    const headers: Record<string, string | string[]> = {}
    for (const name in resHeaders) { const v = resHeaders[name]; if (v !== undefined) headers[name] = v }
    for (const name of NOT_STORED) delete headers[name]
    // One without Date is dated when it came (RFC 9110 6.6.1), as http-cache-semantics reads it:
    // what a client's If-Modified-Since is compared with when there is no Last-Modified.
    if (headers.date === undefined) headers.date = new Date(now).toUTCString()
    const tags = [key.urlTag, ...String(headers[s.surrogateHeader] ?? '').split(/\s+/).filter(t => t !== '').map(surrogateTag)]
    delete headers[s.surrogateHeader]
    const policy = policyHeaders(resHeaders, s.targets)
    withhold(headers, policy)
    const f = freshness(status, policy, now, s.rules, requestTime)
    const ttlMs = this.#ttlMs(f, headers)
    if (ttlMs <= 0) return undefined
    const names = varyNames(headers.vary)
    const variant = names.length === 0 ? '' : variantKey(names, reqHeaders, host)
    return {
      names,
      tags,
      ttlMs,
      ttl: f.lifetime - f.initialAge,
      entry: (body: Buffer): Entry => ({ status, headers, responseTime: now, ...f, variant, keyed: s.keyed, tags, body })
    }
  }

  /**
   * How long the store keeps an entry: its freshness, its stale windows (the upstream's, and the
   * route's as configured when stored), and keepStale when it can be revalidated; at most
   * MAX_LIFETIME, as long as the longest freshness (each part may be that long).
   */
  #ttlMs (f: Pick<Entry, 'lifetime' | 'initialAge' | 'swr' | 'sie' | 'mustRevalidate'>, headers: HeaderMap): number {
    const rules = this.#s.rules
    const route = f.mustRevalidate ? 0 : Math.max(rules.staleWhileRevalidate, rules.staleIfError)
    const seconds = f.lifetime - f.initialAge + Math.max(f.swr, f.sie, route)
    return Math.min(Math.floor(seconds * 1000) + (hasValidator(headers) ? this.#s.keepStaleMs : 0), MAX_LIFETIME * 1000)
  }

  /**
   * What `f` brings carries `tags`: whether it is not to be stored, a purge selecting it (see
   * tagged), or a newer config caching the route otherwise (its reload drops what the route stores).
   */
  #purged (f: InFlight, tags: readonly string[]): boolean {
    if (!f.purged && this.#s.superseded()) f.purged = true
    return tagged(f, tags)
  }

  /** What `f` fetched (or revalidated), written unless a purge selected it; `f`'s last step: purges are no longer checked against it after. */
  async #save (f: InFlight, e: Entry, names: readonly string[], ttlMs: number): Promise<void> {
    const s = this.#s
    const key = f.key
    try {
      // Checked just before the write: a purge that begins after finds it in the store. No time
      // left (see noTimeLeft): never written, a TTL of 0 being none to the store.
      if (this.#purged(f, e.tags) || ttlMs <= 0) return
      try {
        const value = encodeEntry(e)
        if (names.length > 0) {
          // The marker outlives each of its variants: a short-lived one stored last would otherwise take the others' way in with it.
          await s.store.set(key.primary, encodeMarker({ vary: names }), { ttlMs, tags: [key.urlTag], extendOnly: true })
          await s.store.set(key.primary + e.variant, value, { ttlMs, tags: e.tags })
        } else {
          await s.store.set(key.primary, value, { ttlMs, tags: e.tags })
        }
        s.metrics.storedBytes.inc(value.length)
      } catch (err) {
        s.log.debug({ err }, 'cache store unavailable: response not stored')
      }
      // A purge begun while it was written may have missed it (a Redis scan already past its key).
      if (f.purged) await this.#drop(key, e)
    } finally {
      this.#fetching.delete(f)
    }
  }

  async #drop (key: RequestKey, e: Entry): Promise<void> {
    await this.#s.store.delete(key.primary + e.variant).catch(() => 0)
  }

  /**
   * A successful unsafe request invalidates its URL and the Location and Content-Location on its
   * host (RFC 9111 4.4), for every route on the store. What is being fetched for them, begun
   * before, is neither stored nor joined after it, as for a purge (see purging): that is done
   * before the response goes. The deletion is waited for INVALIDATION_WAIT_MS at most, then goes on
   * after the response: a path with many stored queries (which any client can make) would
   * otherwise hold back the answer to a write the upstream has made, past the hook's bound. Until
   * it is over, lookups of those URLs on this instance miss (see #find).
   */
  async #invalidate (req: GatewayRequest, headers: HeaderMap): Promise<void> {
    const s = this.#s
    const host = normalizeHost(req.clientHeaders.host)
    const tags = [s.key(req.path, '', host, {}).urlTag]
    for (const name of ['location', 'content-location']) {
      const v = headers[name]
      if (v === undefined) continue
      let url: URL
      try { url = new URL(String(v), `http://${host}${req.path}`) } catch { continue }
      if (normalizeHost(url.host) !== host) continue
      // Its path as requests' are keyed, as written and as URL encodes it; one no request can have names nothing stored.
      for (const { path } of requestTargets(String(v), url, req.path)) {
        const tag = s.key(path, '', host, {}).urlTag
        if (!tags.includes(tag)) tags.push(tag)
      }
    }
    // The other workers' memory stores hold their own copies, and their fetches may store what came
    // before the write: told at once, waited for as the deletion here is. On a shared store, such a
    // fetch may store the old answer after the deletion here (or hold the URL's fetch, see
    // SharedFetch) until its worker is told: lookups of the URLs here miss until then.
    const told = s.siblings(tags)
    if (s.store.type !== 'memory') s.deletions.hold(tags, told)
    await this.invalidated(tags, told)
  }

  /**
   * Invalidates URL tags on this instance's store, as an unsafe request does (see #invalidate), and
   * waits for the deletion (and `also`) INVALIDATION_WAIT_MS at most. For another worker's write too.
   */
  async invalidated (tags: readonly string[], also?: Promise<void>): Promise<void> {
    const s = this.#s
    // Every route on the store, whose entries its deletion reaches (a read route beside this write route).
    s.invalidating(tags)
    // Within the hook's bound: collapseTimeout is less than half of it (see index.ts).
    await by(Promise.all([...tags.map(t => this.#deleteTag(t)), also]), performance.now() + Math.min(INVALIDATION_WAIT_MS, s.collapser.timeoutMs))
  }

  /**
   * Deletes a URL tag for invalidations, one deletion at a time per tag on the store (see
   * TagDeletions). One the store fails is counted, warned and retried (served stale until a retry
   * goes through).
   */
  #deleteTag (tag: string): Promise<void> {
    const s = this.#s
    return s.deletions.run(tag, () => s.store.deleteTag(tag).then(() => {}, (err: unknown) => {
      if (!keyFault(err)) this.#retryLater(tag)
      s.metrics.invalidationFailures.inc()
      this.#invalidationErrors.report(err)
    }))
  }

  /**
   * Keeps a failed invalidation for a retry (the store may be back in a second), unless the route
   * already keeps MAX_UNFINISHED: its entries then stay until they expire.
   */
  #retryLater (tag: string): void {
    if (this.#disposed || (this.#unfinished.size >= MAX_UNFINISHED && !this.#unfinished.has(tag))) return
    this.#unfinished.add(tag)
    this.#retry ??= setTimeout(() => { void this.#retryUnfinished() }, RETRY_MS).unref()
  }

  /** One at a time, oldest first: the first that fails (the store still down) puts the rest off to the next round. */
  async #retryUnfinished (): Promise<void> {
    for (const tag of this.#unfinished) {
      if (this.#disposed) return
      try {
        await this.#s.store.deleteTag(tag)
      } catch (err) {
        if (!keyFault(err)) break
      }
      this.#unfinished.delete(tag)
    }
    this.#retry = this.#unfinished.size === 0 || this.#disposed ? undefined : setTimeout(() => { void this.#retryUnfinished() }, RETRY_MS).unref()
  }

  /**
   * stale-while-revalidate: one background revalidation per entry at a time, across the instances
   * sharing a Redis store too (the variant's fetch, see SharedFetch); the client already has the
   * stale response.
   */
  #refreshInBackground (req: GatewayRequest, state: Lookup, e: Entry): void {
    const id = state.key.primary + e.variant
    if (this.#refreshing.has(id)) return
    this.#refreshing.add(id)
    const headers = { ...req.headers }
    setValidators(headers, e.headers)
    // It outlives the request: told of purges on its own, and of those since the lookup.
    const flight: InFlight = { key: state.key, purged: state.purged, tags: undefined, purgedKeys: state.purgedKeys?.slice(), prev: undefined, next: undefined }
    this.#fetching.add(flight)
    const shared = this.#s.sharedFetch
    const refreshed = shared === undefined ? this.#refresh(req, headers, flight, e)
      : shared.take(id, req.id).then(giveBack => giveBack && this.#refresh(req, headers, flight, e).finally(giveBack))
    refreshed
      .catch((err: unknown) => this.#s.log.debug({ err }, 'cache background revalidation failed'))
      .finally(() => {
        this.#refreshing.delete(id)
        this.#fetching.delete(flight)
      })
  }

  async #refresh (req: GatewayRequest, headers: HeaderMap, flight: InFlight, e: Entry): Promise<void> {
    const s = this.#s
    const key = flight.key
    const requestTime = Date.now()
    const r = await req.subrequest('GET', headers)
    if (r.status === 304) {
      r.body.resume()
      if (!describesStored(r.headers, e.headers)) return this.#drop(key, e)
      const merged = this.#merge(e, r.headers, requestTime, req.headers, req.clientHeaders.host)
      const reason = this.#unstorable(req, e.status, merged.entry.headers) ?? noTimeLeft(merged)
      if (reason !== undefined) return keepsEntry(reason) ? undefined : this.#drop(key, e)
      s.metrics.requests.revalidated.inc()
      return this.#freshen(flight, e, merged)
    }
    // An error keeps the stale entry (stale-if-error may still use it), as does any 5xx not
    // stored in its place. A body the connection's end delimits may be cut (see
    // GatewayResponse.closeDelimited): never kept, as on a miss.
    const reason = STALE_ERRORS.has(r.status) ? 'error' : r.closeDelimited ? 'close-delimited' : this.#unstorable(req, r.status, r.headers)
    // The hit's headers are those the subrequest sent (no plugin after the cache ran for it).
    const prepared = reason === undefined ? this.#prepare(r.status, r.headers, req.headers, req.clientHeaders.host, key, requestTime) : undefined
    const body = prepared === undefined ? undefined : await readUpTo(r.body, s.maxObjectSize)
    if (prepared === undefined || body === undefined) {
      // An unfinished undici body destroyed emits an abort error: unheard, it would crash the process.
      r.body.once('error', () => {}).destroy()
      if (r.status < 500 && reason !== VARY_SPELLING) await this.#drop(key, e)
      return
    }
    const entry = prepared.entry(body)
    await this.#save(flight, entry, prepared.names, prepared.ttlMs)
  }
}

/** A revalidated entry with no time left to be kept (its TTL 0 or less: see #ttlMs): not stored, its old entry dropped. */
const noTimeLeft = (m: Merged): typeof NO_FRESHNESS | undefined => m.ttlMs <= 0 ? NO_FRESHNESS : undefined

const statusOf = (e: Entry, age: number, collapsed: Lookup | undefined, fwdStatus: number | undefined): StatusParams => collapsed === undefined
  ? { hit: true, ttl: e.lifetime - age }
  : { fwd: collapsed.fwd, fwdStatus, collapsed: true, ttl: e.lifetime - age, detail: collapsed.detail }

/**
 * Whether a HEAD's 200 describes the stored 200 (RFC 9111 4.3.5): it has a validator, each it has
 * is the stored one's, and its Content-Length, when it has one, is the stored body's length.
 */
function describedByHead (head: HeaderMap, e: Entry): boolean {
  const { etag, 'last-modified': lm, 'content-length': length } = head
  if (e.status !== 200 || (etag === undefined && lm === undefined)) return false
  if (etag !== undefined && String(etag) !== String(e.headers.etag)) return false
  if (lm !== undefined && !sameDate(lm, e.headers['last-modified'])) return false
  return length === undefined || Number(length) === e.body.length
}

/**
 * Whether the exchange that carried `e`'s bytes found them bad: a stream could not read them as sent
 * (UpstreamBodyInvalid: compress decoding a corrupt or truncated gzip), or the upstream broke them,
 * which ends it cut `upstream_broken`, or, before the first byte went out, answered with the
 * gateway's 502 in its place. Other failures (a plugin's own, a timeout, the client leaving) say
 * nothing against the bytes.
 */
const spoilt = (e: Entry, status: number, cut: string | undefined): boolean =>
  cut === 'upstream_broken' || (status === 502 && e.status !== 502)

/** A stored 2xx: the only answers a request's preconditions are evaluated against (RFC 9110 13.2.1). */
const successful = (e: Entry): boolean => e.status >= 200 && e.status < 300

/**
 * A store error that is an answer about the key (WRONGTYPE: another writer's value there), not an
 * outage: the same call gets it again, so it is not retried. Any other may pass (a server busy with
 * a script, refusing writes for a while): retried, or a read that bypasses the store.
 */
const keyFault = (err: unknown): boolean => err instanceof StoreError && err.message.startsWith('WRONGTYPE ')

/** A request that could not read the store counts once, as bypass; any other that went upstream as a miss. */
const missOrBypass = (state: Lookup): 'miss' | 'bypass' => state.detail === STORE_DOWN ? 'bypass' : 'miss'

const NO_NAMES: readonly string[] = []
/** Stored entries' Vary names, worked out once per entry: every hit of an entry with Vary checks them. */
const entryNames = new WeakMap<Entry, readonly string[]>()

function namesOf (e: Entry): readonly string[] {
  const vary = e.headers.vary
  if (vary === undefined) return NO_NAMES
  let names = entryNames.get(e)
  if (names === undefined) entryNames.set(e, names = varyNames(vary))
  return names
}

const variantFor = (e: Entry, req: GatewayRequest): string => {
  const names = namesOf(e)
  return names.length === 0 ? '' : variantKey(names, req.headers, req.clientHeaders.host)
}

function sameNames (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * Whether an entry's own Vary selects the request (RFC 9111 4.1), not only the key it was found
 * under: found under `v`, the request's variant for `names` (the marker's; none at the primary
 * key), it must have been stored under `v` too, for the same names (else for its own names).
 */
const selects = (e: Entry, req: GatewayRequest, names: readonly string[], v: string): boolean =>
  e.variant === v && (sameNames(namesOf(e), names) || variantFor(e, req) === v)

/**
 * Whether the request carries credentials (RFC 9111 3.5, about the request the upstream gets): an
 * Authorization, the client's or one a plugin put in the forwarded headers (request-headers' rename,
 * a user's plugin), or a consumer an auth plugin identified (key-auth's keys are not in
 * Authorization); the anonymous consumer is no one in particular.
 */
const credentialed = (req: GatewayRequest): boolean =>
  req.clientHeaders.authorization !== undefined || req.headers.authorization !== undefined ||
  (req.consumer !== undefined && req.headers[ANONYMOUS_HEADER] !== 'true')


function onlyIfCached (name: string, fwd: Fwd): PluginReply {
  const headers: HeaderMap = {}
  addCacheStatus(headers, name, { fwd, detail: 'only-if-cached' })
  return { status: 504, headers, body: { error: 'not_cached', message: 'only-if-cached: no stored response fits this request' } }
}

/** Swaps the response's headers for `headers` (keeping the request id). */
function replaceHeaders (target: HeaderMap, headers: HeaderMap): void {
  const id = target['x-request-id']
  for (const k in target) delete target[k]
  Object.assign(target, headers)
  target['x-request-id'] = id
}

/**
 * Turns the response into the stored one: its headers, and its body in place of whatever comes (an
 * empty 304, an error page), sent at once: the upstream's is not waited for, nor can it fail this one.
 */
function replaceResponse (res: GatewayResponse, e: Entry, headers: HeaderMap): void {
  replaceHeaders(res.headers, headers)
  res.replaceBody(e.body)
}

/** `p`'s outcome, or undefined once `until` (performance.now()) has passed. */
async function by<T> (p: Promise<T>, until: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<undefined>(resolve => { timer = setTimeout(resolve, until - performance.now(), undefined) })
  try {
    return await Promise.race([p, late])
  } finally {
    clearTimeout(timer)
  }
}

async function readUpTo (body: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}
