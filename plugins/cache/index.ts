import { definePlugin, toBytes, toMs } from '../../src/index.ts'
import { compileCookieBypass, compileKey, compileSpellingBypass } from './cache-key.ts'
import { Collapser } from './collapse.ts'
import { cacheMetrics, requestsCounter } from './metrics.ts'
import { keyFingerprint, keySettings, Purger } from './purge.ts'
import { evictionWarning } from './eviction.ts'
import { RouteCache } from './route-cache.ts'
import { SharedFetch } from './shared-fetch.ts'
import { CacheSchema } from './schema.ts'
import { recentValues } from './entry.ts'
import { storeErrorLog } from '../shared/store-errors.ts'
import { bypassingAuth, credentialBypassMessage } from './check-credentials.ts'

const DEFAULT_STATUSES = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

/**
 * A shared HTTP cache (RFC 9111) in front of the route's upstream. Priority 500: after
 * authentication and rate limiting (a hit is never served to a request they would refuse), and
 * above response transforms.
 */
export default definePlugin({
  name: 'cache',
  priority: 500,
  schema: CacheSchema,
  // A cache the route's auth plugins let no request past without credentials never stores.
  warnings (config, ctx) {
    const auth = bypassingAuth(config, ctx.plugins)
    return auth.length === 0 ? [] : [credentialBypassMessage(auth)]
  },
  setup (config, ctx) {
    const store = ctx.store(config.store)
    // A waiter may wait for two fetches (its leader's, then, that one gone, the next's), within its
    // onRequest: past the hook's bound it would get a 504 where the cache means it to go upstream.
    // On Redis, store reads begun before that wait ends may end after it: at most three (a poll's
    // fetch check and Vary lookup, or a lookup and the fetch's take), each bounded by commandTimeout.
    // Left out, collapseTimeout is 5 s, less under a short server.pluginTimeout; set, it must fit.
    const readsMs = 3 * (store.commandTimeout ?? 0)
    const collapseMs = config.collapseTimeout === undefined ? Math.max(1, Math.min(5_000, Math.ceil((ctx.hookTimeoutMs - readsMs) / 2) - 1)) : toMs(config.collapseTimeout)
    if (2 * collapseMs + readsMs >= ctx.hookTimeoutMs) {
      const reads = readsMs === 0 ? '' : ` less 3 × store "${store.name}"'s commandTimeout (${readsMs / 3} ms), the reads a wait may end with`
      throw new Error(`collapseTimeout (${collapseMs} ms) must be less than half of server.pluginTimeout (${ctx.hookTimeoutMs} ms)${reads}: a request may wait twice collapseTimeout for other requests' fetches, and its onRequest is cut at server.pluginTimeout (504); lower collapseTimeout${readsMs === 0 ? '' : ' or commandTimeout'} or raise server.pluginTimeout`)
    }
    const purger = ctx.shared('purge', () => new Purger(ctx.admin, requestsCounter(ctx.metrics)))
    ctx.shared(`eviction ${store.name}`, () => evictionWarning(store, ctx.log))
    const settings = keySettings(config.key)
    const bypassHeaders = (config.bypass?.headers ?? []).map(h => h.toLowerCase())
    const cache = new RouteCache({
      name: config.name ?? 'Portcullis',
      store,
      key: compileKey(ctx.routeName, config.key),
      keyed: keyFingerprint(settings),
      methods: new Set(config.methods ?? ['GET', 'HEAD']),
      statuses: new Set(config.statuses ?? DEFAULT_STATUSES),
      maxObjectSize: toBytes(config.maxObjectSize ?? '1MiB'),
      rules: {
        heuristicMax: toMs(config.heuristicMax ?? '1d') / 1000,
        defaultTtl: config.defaultTtl === undefined ? 0 : toMs(config.defaultTtl) / 1000,
        staleIfError: config.staleIfError === undefined ? 0 : toMs(config.staleIfError) / 1000,
        staleWhileRevalidate: config.staleWhileRevalidate === undefined ? 0 : toMs(config.staleWhileRevalidate) / 1000
      },
      keepStaleMs: toMs(config.keepStale ?? '1h'),
      bypassHeaders,
      bypassSpellings: compileSpellingBypass(bypassHeaders, (config.key?.headers ?? []).map(h => h.toLowerCase())),
      bypassCookies: compileCookieBypass(config.bypass?.cookies ?? []),
      cacheAuthorized: config.cacheAuthorized ?? false,
      honorRequestDirectives: config.requestCacheControl === 'honor',
      surrogateHeader: (config.surrogateKeyHeader ?? 'Surrogate-Key').toLowerCase(),
      targets: (config.targetedCacheControl ?? []).map(h => h.toLowerCase()),
      collapser: new Collapser(collapseMs),
      sharedFetch: store.type === 'redis' ? new SharedFetch(store, collapseMs) : undefined,
      recent: store.getNow === undefined ? recentValues(store) : undefined,
      invalidating: tags => purger.invalidating(store, tags),
      siblings: tags => ctx.admin.onOtherWorkers('POST', '/invalidate', { store: store.name, tags }),
      deletions: purger.deletions(store),
      superseded: () => purger.superseded(ctx.routeName, store, settings),
      metrics: cacheMetrics(ctx.metrics, ctx.routeName, store.name),
      log: ctx.log,
      errors: {
        invalidation: storeErrorLog(ctx, { store: store.name },
          `cache: store "${store.name}" failed an invalidation by an unsafe request; the URLs are served from the cache until a retry (every second) goes through`),
        corrupt: storeErrorLog(ctx, { store: store.name },
          `cache: store "${store.name}" held values the cache cannot read (malformed, cut short, or of another format); each was dropped and its request went upstream`)
      }
    })
    purger.add({ name: ctx.routeName, store, key: config.key, settings, purging: p => cache.purging(p), dropping: done => cache.dropping(done), invalidate: tags => cache.invalidated(tags), log: ctx.log })
    return cache
  }
})
