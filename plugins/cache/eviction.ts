import type { Logger } from 'pino'
import type { Store } from '../../src/index.ts'

/** A Redis store's view of its server's eviction (RedisStore.watchEviction); not part of the Store API. */
interface Evicting { watchEviction? (watcher: (policy: string | undefined) => void): () => void }

/**
 * The policy each store's server was last heard to evict by (null: none): one warning per change,
 * not per route, config or reconnect.
 */
const heard = new WeakMap<Store, string | null>()

/**
 * Warns when the Redis behind `store` evicts keys for room: it evicts the cache's tag sets and tag
 * records (rarely read) while the entries (read on every hit) stay, and deleteTag finds no more
 * than its tag set names. A value of ctx.shared: disposed with its config.
 */
export function evictionWarning (store: Store, log: Logger): { dispose (): void } {
  const stop = (store as Evicting).watchEviction?.(policy => {
    if (heard.get(store) === (policy ?? null)) return
    heard.set(store, policy ?? null)
    if (policy !== undefined) {
      log.warn({ store: store.name, policy },
        `cache: store "${store.name}"'s Redis evicts keys when full (maxmemory-policy ${policy}): invalidations by unsafe requests and purges by tag are then best-effort (an evicted tag set leaves its entries served until they expire); give the cache a Redis with maxmemory-policy noeviction (volatile-* evicts the cache's keys too: they all expire)`)
    }
  })
  return { dispose: () => stop?.() }
}
