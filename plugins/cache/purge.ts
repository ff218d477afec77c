import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { normalizePath, type PluginAdmin, type PluginAdminReply, type Store, type StoreError } from '../../src/index.ts'
import { isUrlTag, MAX_PARAMETERS, tooManyParameters, urlKeyPrefix } from './cache-key.ts'
import type { CacheConfig } from './schema.ts'

/** What a purge selects in a route: the keys under a prefix, or the entries with a tag; `{}`: everything. */
export interface Purge { readonly prefix?: string, readonly tag?: string }

interface CachedRoute {
  readonly name: string
  readonly store: Store
  readonly key: CacheConfig['key']
  /** Its key settings, as keySettings gives them. */
  readonly settings: string
  /** Told before its store is purged: its fetches begun before must not be stored, nor joined (see RouteCache.purging). */
  readonly purging: (p: Purge) => void
  /** Told as its entries from an earlier config are dropped, with the drop (see Purger.inService): its lookups miss until it ends. */
  readonly dropping: (done: Promise<void>) => void
  /** Invalidates URL tags on its store, as an unsafe request it took would (see RouteCache.invalidated). */
  readonly invalidate: (tags: readonly string[]) => Promise<void>
  readonly log: Logger
}
/** One store's part of a purge: the keys it deleted. */
interface Work { readonly store: Store, readonly count: Promise<number> }
/** How a config cached a route: into which store, with which key settings (see keySettings). */
interface Cached { readonly store: Store, readonly settings: string }

/**
 * Each gateway's config in service, as how it cached each of its routes: what a config's routes are
 * compared with as it goes into service (Purger.inService). NOTHING once that config is out of
 * service with no config with a cached route put in service after it (see Purger.outOfService): it
 * gave way to a config that caches no route (whose unsafe requests invalidated nothing), or the
 * gateway stopped.
 */
const served = new WeakMap<object, ReadonlyMap<string, Cached>>()
/**
 * Each gateway's newest config, set up or being set up (see superseded); once it is out of service
 * (see Purger.outOfService), the config in service again: one built but never put in service (a
 * reload called off) changes nothing.
 */
const newest = new WeakMap<object, ReadonlyMap<string, Cached>>()
const NOTHING: ReadonlyMap<string, Cached> = new Map()

/**
 * Each gateway's cached routes, of every config not yet disposed: a replaced config still draining
 * may store what it fetches, so it is told of the purges and invalidations made on the ones after it.
 */
const live = new WeakMap<object, Set<CachedRoute>>()

/**
 * URL tags being deleted for invalidations, per store keys (see sameKeys): a Redis store's by each
 * gateway's keySpace (a reload may make a new object on the same keys), another's by the object.
 */
const deletionsByKeys = new WeakMap<object, Map<string, TagDeletions>>()
const deletionsByStore = new WeakMap<Store, TagDeletions>()

/** How many URL tags one store holds for workers' confirmations at most (see TagDeletions.hold). */
const MAX_HELD = 10_000

/** How long dropping a route's entries waits for a store that is not up (a Redis store new in the config is still connecting). */
const DROP_TRIES = 20
const DROP_RETRY_MS = 100

/** Tags are namespaced so a surrogate key can never name a URL tag. */
export const surrogateTag = (key: string): string => `s:${key}`

/**
 * POST /plugins/cache/purge, one for the config (created from ctx.shared), over every cached route:
 * { "url": "https://host/path?q" } one URL (all its header and Vary variants), { "prefix": "/path/" }
 * every path under it, { "tag": "k" } every response that carried surrogate key k, { "all": true }.
 */
export class Purger {
  readonly #routes: CachedRoute[] = []
  readonly #gateway: object
  readonly #byRoute = new Map<string, Cached>()
  /** The gateway's live routes (see live), this config's among them. */
  readonly #live: Set<CachedRoute>

  /** `gateway`: an object every config of the gateway gets, and no other gateway's (see requestsCounter). */
  constructor (admin: PluginAdmin, gateway: object) {
    admin.route('POST', '/purge', req => this.#purge(req.body))
    admin.route('POST', '/invalidate', req => this.#invalidate(req.body))
    this.#gateway = gateway
    newest.set(gateway, this.#byRoute)
    let routes = live.get(gateway)
    if (routes === undefined) live.set(gateway, routes = new Set())
    this.#live = routes
  }

  /** Adds a route: its entries from earlier configs are seen to once the config is in service (see inService). */
  add (route: CachedRoute): void {
    this.#routes.push(route)
    this.#live.add(route)
    this.#byRoute.set(route.name, { store: route.store, settings: route.settings })
  }

  /**
   * The config goes into service (see Runtime's: not while it is built, as a reload may be called off).
   * Where the config it replaces did not cache a route into the same store (or one on the same keys:
   * see sameKeys), the route's entries there (from an earlier config) may have missed purges and
   * invalidations, which went to the store it used meanwhile, or nowhere; where it did with other key
   * settings, they were stored under keys that are not this config's (a query parameter ignored then
   * would answer requests without it). Either way they are dropped, with what the live configs are
   * fetching for the route there; the route's lookups miss until they are gone. Nothing is dropped for
   * the gateway's first config with a cached route.
   */
  inService (): void {
    const before = served.get(this.#gateway)
    served.set(this.#gateway, this.#byRoute)
    if (before === undefined) return
    for (const route of this.#routes) {
      const was = before.get(route.name)
      const sameStore = was !== undefined && sameKeys(was.store, route.store)
      if (sameStore && was.settings === route.settings) continue
      const prefix = `c:${route.name}:`
      this.#tell(route, () => prefix)
      route.dropping(drop(route, prefix, sameStore ? 'they were stored under other key settings' : 'they may have missed purges'))
    }
  }

  /**
   * Whether the gateway's newest config caches route `name` otherwise than into `store` with key
   * `settings`: what the route fetches then is not stored, as that config drops the route's entries
   * there (once in service, maybe after this fetch began) or never reads them.
   */
  superseded (name: string, store: Store, settings: string): boolean {
    const now = newest.get(this.#gateway)?.get(name)
    return now !== undefined && !(sameKeys(now.store, store) && now.settings === settings)
  }

  /**
   * An unsafe request's invalidation of URL tags in `store`, before the store deletes them: every
   * live route on that store is told, as of a purge (its fetches of those URLs begun before are
   * neither stored nor joined). A route whose keys are not on the same host setting never holds
   * those tags, as the store's deletion never reaches its entries.
   */
  invalidating (store: Store, tags: readonly string[]): void {
    for (const r of this.#live) if (sameKeys(r.store, store)) for (const tag of tags) r.purging({ tag })
  }

  /** The invalidations under way on `store` (or one on the same keys), which every route on it runs and reads. */
  deletions (store: Store): TagDeletions {
    if (store.keySpace === undefined) {
      let d = deletionsByStore.get(store)
      if (d === undefined) deletionsByStore.set(store, d = new TagDeletions())
      return d
    }
    let byKeys = deletionsByKeys.get(this.#gateway)
    if (byKeys === undefined) deletionsByKeys.set(this.#gateway, byKeys = new Map())
    let d = byKeys.get(store.keySpace)
    if (d === undefined) byKeys.set(store.keySpace, d = new TagDeletions())
    return d
  }

  /**
   * A reload put another config in service in this one's place (see Runtime's), or (dispose) the
   * gateway stopped or this config was called off. Where that config caches no route (it has no
   * Purger), its writes invalidate nothing: the next config with a cached route must compare with
   * NOTHING (and drop), not with this one, which may drain for long after.
   */
  outOfService (): void {
    if (served.get(this.#gateway) === this.#byRoute) served.set(this.#gateway, NOTHING)
    if (newest.get(this.#gateway) === this.#byRoute) newest.set(this.#gateway, served.get(this.#gateway) ?? NOTHING)
  }

  dispose (): void {
    this.outOfService()
    for (const r of this.#routes) this.#live.delete(r)
  }

  /**
   * POST /invalidate {"store": name, "tags": [URL tags]}: another worker's invalidation by an unsafe
   * request (see RouteCache's siblings), on this worker's store of that name: its fetches of those
   * URLs begun before are neither stored nor joined, and the tags deleted. A memory store is each
   * worker's own; on a shared one (Redis), which the writing worker deleted from already, a fetch
   * here may have stored the old answer since, before this came. Any other field is refused, as a
   * purge's: `"inFlight": true`, which once left the store as it was, would delete.
   */
  async #invalidate (body: unknown): Promise<PluginAdminReply> {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>
    const { store, tags } = b
    if (typeof store !== 'string' || !Array.isArray(tags) || !tags.every(t => typeof t === 'string' && isUrlTag(t)) || Object.keys(b).length !== 2) {
      return { status: 400, body: { error: 'bad_invalidation', message: 'send {"store": "<store name>", "tags": [<URL tags>]}, nothing else: the invalidation one worker passes on to the others' } }
    }
    const route = this.#routes.find(r => r.store.name === store)
    await route?.invalidate(tags as string[])
    return { body: { invalidated: route === undefined ? 0 : tags.length } }
  }

  async #purge (body: unknown): Promise<PluginAdminReply> {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>
    let work: Work[]
    // One selector, nothing else: {"tag": "x", "all": true} or a misspelt key beside a good one
    // would otherwise purge more, or less, than the operator meant.
    if (Object.keys(b).length !== 1) {
      return bad(ONE_OF)
    } else if (typeof b.url === 'string') {
      let url: URL
      try { url = new URL(b.url) } catch { return bad('"url" must be an absolute URL, such as https://api.example.com/items/7') }
      // Only what requests are cached under: file: or javascript: would purge nothing, and say so as a success.
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return bad(`"url" must be an http: or https: URL (not ${url.protocol}), such as https://api.example.com/items/7`)
      const targets = requestTargets(b.url, url)
      if (targets.length === 0) return bad('"url" has a path requests are refused for (400 bad_path): nothing is cached under it')
      // Such requests skip the cache (detail=ambiguous-query): no key to purge, nor any to guess at.
      if (tooManyParameters(url.search)) return bad(`"url" has more than ${MAX_PARAMETERS} query parameters: requests with that many skip the cache, so nothing is cached under it; purge {"prefix": "${(targets[0] as { path: string }).path}?"} for every query of the path`)
      work = this.#routes.flatMap(r => targets.map(({ path, query }) => this.#purgePrefix(r, o => urlKeyPrefix(o.name, o.key, { host: url.host, search: query }, path))))
    } else if (typeof b.prefix === 'string' && b.prefix.startsWith('/')) {
      const prefix = b.prefix
      work = this.#routes.map(r => this.#purgePrefix(r, o => `c:${o.name}:${prefix}`))
    } else if (typeof b.tag === 'string' && b.tag !== '') {
      // Responses list their tags separated by white space (see #prepare): no stored tag holds any.
      if (/\s/.test(b.tag)) return bad('"tag" must be one tag without white space: the surrogate key header separates tags by spaces, so no response is tagged with one that has them; send one purge per tag')
      const tag = surrogateTag(b.tag)
      const stores = this.#stores({ tag })
      work = stores.map(s => ({ store: s, count: s.deleteTag(tag) }))
    } else if (b.all === true) {
      work = this.#stores({}).map(s => ({ store: s, count: s.deletePrefix('c:') }))
    } else {
      return bad(ONE_OF)
    }
    // Every store is purged, whichever fail: the answer names those, and counts what all deleted,
    // those that failed midway too (a Redis lost after some batches).
    const settled = await Promise.allSettled(work.map(w => w.count))
    let purged = 0
    let answered = 0
    const failed = new Map<string, { message: string, deleted: number }>()
    for (const [i, s] of settled.entries()) {
      const store = (work[i] as Work).store.name
      if (s.status === 'fulfilled') { purged += s.value; answered += s.value; continue }
      const err = s.reason as StoreError
      const f = failed.get(store) ?? { message: err.message, deleted: 0 }
      f.deleted += err.deleted ?? 0
      purged += err.deleted ?? 0
      failed.set(store, f)
    }
    if (failed.size === 0) return { body: { purged } }
    const errors = [...failed].map(([store, f]) => `store "${store}": ${f.message}${f.deleted > 0 ? ` (after purging ${f.deleted} key(s) there)` : ''}`).join('; ')
    const others = work.length > settled.filter(s => s.status === 'rejected').length ? `; ${answered} key(s) purged on the stores that answered` : ''
    const message = `${errors}${others}; the purge is incomplete: send it again once the store is back, it goes on with what is left`
    return { status: 503, body: { error: 'store_unavailable', message, purged, unavailable: [...failed.keys()] } }
  }

  /** The stores of the config's routes, every live route on them told of `p` first (their entries there go). */
  #stores (p: Purge): Store[] {
    const stores = [...new Set(this.#routes.map(r => r.store))]
    for (const o of this.#live) if (stores.some(s => sameKeys(o.store, s))) o.purging(p)
    return stores
  }

  /** Purges the keys of `r` under the prefix `of` gives, the live routes of its name on its store told first. */
  #purgePrefix (r: CachedRoute, of: (o: CachedRoute) => string): Work {
    this.#tell(r, of)
    return { store: r.store, count: r.store.deletePrefix(of(r)) }
  }

  /**
   * Tells the live routes of `r`'s name on its store (r, and those of replaced configs still
   * draining) of a purge of the prefix `of` gives each: their keys' (a URL's query by their settings).
   */
  #tell (r: CachedRoute, of: (o: CachedRoute) => string): void {
    for (const o of this.#live) if (o.name === r.name && sameKeys(o.store, r.store)) o.purging({ prefix: of(o) })
  }
}

/**
 * The URL tags one store is deleting for invalidations: one deletion of a tag at a time, and one
 * more queued after it for those that come meanwhile (what it has passed may have been stored again
 * before them), so that a client's writes in a row never run more, whichever routes take them.
 * While a tag is listed (or held: see hold), its URLs' lookups are misses: an entry the deletion has
 * not reached yet (of tens of thousands a client can make) is never served after the write was answered.
 */
export class TagDeletions {
  readonly #running = new Map<string, { readonly done: Promise<void>, next?: Promise<void> }>()
  /** Tags held until the other workers confirm their invalidation (see hold): how many holds each. */
  readonly #held = new Map<string, number>()

  /** Whether `tag` is being deleted, or held: size checks when nothing is. */
  has (tag: string): boolean {
    return (this.#running.size !== 0 && this.#running.has(tag)) || (this.#held.size !== 0 && this.#held.has(tag))
  }

  /**
   * Lists `tags` until `told` settles: the other workers of a write's instance have been told of it
   * on a shared store (see RouteCache's siblings). Until then a fetch there begun before the write may
   * store the old answer after this worker's deletion. Within the time the primary waits for them (60
   * s at most), and MAX_HELD tags: past that, a tag is not held.
   */
  hold (tags: readonly string[], told: Promise<void>): void {
    const held = tags.filter(t => this.#held.has(t) || this.#held.size < MAX_HELD)
    for (const t of held) this.#held.set(t, (this.#held.get(t) ?? 0) + 1)
    const release = (): void => {
      for (const t of held) {
        const n = (this.#held.get(t) ?? 1) - 1
        if (n === 0) this.#held.delete(t); else this.#held.set(t, n)
      }
    }
    void told.then(release, release)
  }

  /** Runs `deletion` of `tag` (which must not reject), or queues it once behind the one running. */
  run (tag: string, deletion: () => Promise<void>): Promise<void> {
    const running = this.#running.get(tag)
    if (running !== undefined) return running.next ??= running.done.then(() => this.#start(tag, deletion))
    return this.#start(tag, deletion)
  }

  /** The tag stays listed from its first deletion to the end of the one queued behind it, none between. */
  #start (tag: string, deletion: () => Promise<void>): Promise<void> {
    const entry: { readonly done: Promise<void>, next?: Promise<void> } = {
      done: deletion().finally(() => { if (entry.next === undefined) this.#running.delete(tag) })
    }
    this.#running.set(tag, entry)
    return entry.done
  }
}

/**
 * The paths and queries of the requests for `ref`, as their keys hold them: `url` (`ref` parsed)
 * percent-encodes characters (`{`, `}`, `'`, `"`, `<`...) that requests keep as they send them, so
 * both spellings are given when they differ. A reference is resolved against `basePath`. Paths are
 * normalized as requests' are (/caf%c3%a9, /%7Euser and //a are /caf%C3%A9, /~user and /a); one no
 * request can have is left out.
 */
export function requestTargets (ref: string, url: URL, basePath = '/'): Array<{ path: string, query: string }> {
  const targets: Array<{ path: string, query: string }> = []
  const add = (rawPath: string, query: string): void => {
    const path = normalizePath(rawPath)
    if (path !== undefined && !targets.some(t => t.path === path && t.query === query)) targets.push({ path, query })
  }
  add(url.pathname, url.search)
  const raw = rawTarget(ref, basePath)
  if (raw !== undefined) {
    const q = raw.indexOf('?')
    add(q === -1 ? raw : raw.slice(0, q), q === -1 ? '' : raw.slice(q))
  }
  return targets
}

/**
 * `ref`'s path and query as written, without its fragment; undefined for a form URL reads its own
 * way (`http:/a`, `http:a`).
 */
function rawTarget (ref: string, basePath: string): string | undefined {
  const s = ref.trim().replace(/#.*/s, '')
  const authority = /^(?:[a-z][a-z\d+.-]*:)?\/\/[^/?\\]*/i.exec(s)
  if (authority !== null) { const rest = s.slice(authority[0].length); return rest.startsWith('/') ? rest : `/${rest}` }
  if (/^[a-z][a-z\d+.-]*:/i.test(s)) return undefined
  if (s === '' || s.startsWith('?')) return basePath + s
  return s.startsWith('/') ? s : basePath.slice(0, basePath.lastIndexOf('/') + 1) + s
}

/**
 * A route's key settings as they shape its keys (see compileKey), for comparing two configs':
 * query names are sets (their order changes no key), headers a list (it does).
 */
export function keySettings (key: CacheConfig['key'] = {}): string {
  const include = key.query?.include
  return JSON.stringify([key.host ?? true, include === undefined ? null : [...new Set(include)].sort(), [...new Set(key.query?.ignore)].sort(), (key.headers ?? []).map(h => h.toLowerCase())])
}

/**
 * A short hash of keySettings, computed once per config: stored in each entry, and compared on
 * every hit (see Entry.keyed), so that an entry stored under other settings (by another instance,
 * or before a restart) is a miss.
 */
export const keyFingerprint = (settings: string): string => createHash('sha256').update(settings).digest('base64url').slice(0, 12)

/**
 * Whether `before` is `store`, or another object on the same keys: a Redis store whose settings
 * changed elsewhere than where its keys live (a timeout, a password) is a new object on the same keys.
 */
function sameKeys (before: Store | undefined, store: Store): boolean {
  return before === store || (before !== undefined && before.keySpace !== undefined && before.keySpace === store.keySpace)
}

/** Deletes the route's entries in its store (`prefix`), for `why`; a store down all along is logged, with the remedy. */
async function drop (route: CachedRoute, prefix: string, why: string): Promise<void> {
  const log = route.log
  for (let tries = 1; ; tries++) {
    try {
      const n = await route.store.deletePrefix(prefix)
      if (n > 0) log.info({ store: route.store.name, dropped: n }, `cache entries from an earlier config dropped: ${why}`)
      return
    } catch (err) {
      if ((err as StoreError).code !== 'STORE_UNAVAILABLE' || tries === DROP_TRIES) {
        log.warn({ store: route.store.name, err }, `cache entries from an earlier config not dropped: ${why}; purge {"all": true} once the store is back`)
        return
      }
    }
    await sleep(DROP_RETRY_MS)
  }
}

const ONE_OF = 'send one of {"url": "<absolute URL>"}, {"prefix": "/path/"}, {"tag": "<surrogate key>"}, {"all": true}, alone'
const bad = (message: string): PluginAdminReply => ({ status: 400, body: { error: 'bad_purge', message } })
