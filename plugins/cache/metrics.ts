import type { PluginMetrics } from '../../src/index.ts'

const RESULTS = ['hit', 'miss', 'stale', 'revalidated', 'bypass', 'collapsed', 'unsatisfiable'] as const
export type Result = typeof RESULTS[number]

/** A route's counters, bound to their labels once at setup. */
export interface CacheMetrics {
  readonly requests: Readonly<Record<Result, { inc (): void }>>
  readonly storedBytes: { inc (n: number): void }
  /** Invalidations by unsafe requests that a store failure stopped (retried: see RouteCache). */
  readonly invalidationFailures: { inc (): void }
  /** Stored values the cache could not read (see decode): dropped, the request a miss. */
  readonly corruptEntries: { inc (): void }
}

/** The requests counter: one per gateway, the same object for each of its configs (PluginMetrics keeps metrics across reloads). */
export const requestsCounter = (metrics: PluginMetrics) => metrics.counter({
  name: 'portcullis_cache_requests_total',
  help: 'Requests on cached routes, by what the cache did: hit, miss, stale (served stale), revalidated (an entry freshened by the upstream), bypass, collapsed (served from another request\'s fetch), unsatisfiable (only-if-cached answered 504).',
  labelNames: ['route', 'result']
})

export function cacheMetrics (metrics: PluginMetrics, route: string, store: string): CacheMetrics {
  const requests = requestsCounter(metrics)
  const stored = metrics.counter({
    name: 'portcullis_cache_stored_bytes_total',
    help: 'Bytes of responses (head and body) the cache wrote, by store.',
    labelNames: ['store']
  })
  const invalidationFailures = metrics.counter({
    name: 'portcullis_cache_invalidation_failures_total',
    help: 'Invalidations by unsafe requests (POST, PUT...) the store failed, by route: the entries are served until a retry goes through, or until they expire.',
    labelNames: ['route']
  })
  const corrupt = metrics.counter({
    name: 'portcullis_cache_corrupt_entries_total',
    help: 'Stored values the cache could not read, by route (malformed, cut short, or written in another format): each was dropped and its request went upstream as a miss.',
    labelNames: ['route']
  })
  // Rare events: at 0 from setup, else the first would appear at 1 and show no increase().
  const failures = invalidationFailures.labels(route)
  const corruptEntries = corrupt.labels(route)
  failures.inc(0)
  corruptEntries.inc(0)
  return {
    requests: Object.fromEntries(RESULTS.map(r => [r, requests.labels(route, r)])) as CacheMetrics['requests'],
    storedBytes: stored.labels(store),
    invalidationFailures: failures,
    corruptEntries
  }
}
