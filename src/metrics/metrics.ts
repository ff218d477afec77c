import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { StoreSnapshot } from '../stores/store.ts'
import { droppedLogLines } from '../logging/logger.ts'
import { uploadsWaiting } from '../server/http2.ts'
import { bodyBytesReserved } from '../proxy/body-budget.ts'
import { RequestMetrics, UNMATCHED_ROUTE } from './request-metrics.ts'
import { BucketHistogram } from './bucket-histogram.ts'
import { openMetricsText, type ExpositionFormat } from './exposition.ts'
import { breakerDown, downReasons, type Target } from '../upstreams/target.ts'
import type { Upstream } from '../upstreams/upstream.ts'

const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const
const RELOAD_RESULTS = ['success', 'invalid', 'failed', 'unchanged'] as const

/** What prom-client's metrics keep of their series (not in its types; see FastCounter). */
interface SeriesInternals { labelNames?: string[], hashMap?: Record<string, { labels?: Record<string, string | number> }> }

/**
 * The gateway's Prometheus metrics. One instance per process, created at start and handed to
 * each runtime, so counters survive config reloads. Add a metric here, next to its siblings.
 */
export class Metrics {
  readonly registry = new Registry()

  /** Config reload attempts by result (RELOAD_RESULTS). */
  readonly configReloads = new Counter({
    name: 'portcullis_config_reloads_total',
    help: 'Config reload attempts, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  /**
   * Whether the last reload put the file's config in service (1: a success, or the file put back to
   * the config in service) or not (0: invalid or failed, the previous config serving), as Prometheus'
   * own prometheus_config_last_reload_successful. Unlike the counter's increase(), it stays 0 for as
   * long as the file stays broken, whatever succeeded before.
   */
  readonly configLastReloadSuccessful = new Gauge({
    name: 'portcullis_config_last_reload_successful',
    help: 'Whether the last config reload succeeded (1: success, or the file put back to the config in service) or not (0: invalid or failed).',
    // Workers (cluster /metrics): the primary reloads; the workers' own gauges stay at 1.
    aggregator: 'min',
    registers: [this.registry]
  })

  /** Counts a reload attempt of `result`, and sets configLastReloadSuccessful. */
  configReloaded (result: typeof RELOAD_RESULTS[number]): void {
    this.configReloads.inc({ result })
    this.configLastReloadSuccessful.set(result === 'invalid' || result === 'failed' ? 0 : 1)
    // Plugins of a build that failed set up their routes' series at 0: those not in service go.
    if (result === 'failed') this.dropRetired()
  }

  /** Requests by route, method and status; latencies, overhead, bytes, in flight. */
  readonly requests = new RequestMetrics(this.registry)

  /** 1 for the hash of the config in service (the label changes on reload). */
  readonly configInfo = new Gauge({
    name: 'portcullis_config_info',
    help: 'The config in service: its sha256 as the hash label, value 1.',
    labelNames: ['hash'] as const,
    // Across workers: 1 for each config some worker serves, not the number of workers serving it.
    aggregator: 'max',
    registers: [this.registry]
  })

  /** Marks `hash` as the config in service. */
  configActive (hash: string): void {
    this.configInfo.reset()
    this.configInfo.set({ hash }, 1)
  }

  /** Retries to another target, by upstream and reason (connect-error, reset, timeout, or the status). */
  readonly upstreamRetries = new Counter({
    name: 'portcullis_upstream_retries_total',
    help: 'Requests retried on another target, by upstream and reason.',
    labelNames: ['upstream', 'reason'] as const,
    registers: [this.registry]
  })

  /** Passive ejections (outlier detection), by upstream and target. */
  readonly upstreamEjections = new Counter({
    name: 'portcullis_upstream_ejections_total',
    help: 'Targets ejected after consecutive failures, by upstream and target.',
    labelNames: ['upstream', 'target'] as const,
    registers: [this.registry]
  })

  /**
   * Requests refused with 503 upstream_busy, by upstream and reason (`queue-full` | `queue-timeout`),
   * and with 503 upload_slots_busy (`upload-slots`: see Uploads).
   */
  readonly upstreamBusy = new Counter({
    name: 'portcullis_upstream_busy_total',
    help: 'Requests refused, by upstream and reason: every connection of the target busy (queue-full, queue-timeout), or every upload slot of their HTTP/2 connection (upload-slots).',
    labelNames: ['upstream', 'reason'] as const,
    registers: [this.registry]
  })

  /** Time requests that had to wait spent waiting for a connection (requests sent at once are not observed). */
  readonly upstreamQueueWait = new Histogram({
    name: 'portcullis_upstream_queue_wait_seconds',
    help: 'Time a request waited for a free connection of its target, when it had to wait.',
    labelNames: ['upstream'] as const,
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry]
  })

  /**
   * Timeouts by kind: client_handshake, client_headers, client_body_timeout, client_body_too_slow, client_send_timeout (slow clients cut off),
   * upstream_response, upstream_idle, upstream_send, upstream_connect, request, queue.
   */
  readonly timeouts = new Counter({
    name: 'portcullis_timeouts_total',
    help: 'Timeouts, by kind (client_handshake, client_headers, client_body_timeout, client_body_too_slow, client_send_timeout, upstream_response, upstream_idle, upstream_send, upstream_connect, request, queue).',
    labelNames: ['kind'] as const,
    registers: [this.registry]
  })

  /**
   * Requests waiting for an upload slot of their HTTP/2 connection (server.http2.maxStreamingUploads),
   * not in the queue-length gauge: their target may have connections free. No label: a count of the process's.
   */
  readonly http2UploadsWaiting: Gauge = new Gauge({
    name: 'portcullis_http2_uploads_waiting',
    help: 'HTTP/2 requests whose body is still arriving waiting for an upload slot of their connection (server.http2.maxStreamingUploads), before they may take an upstream connection.',
    aggregator: 'sum',
    registers: [this.registry],
    collect: () => { this.http2UploadsWaiting.set(uploadsWaiting()) }
  })

  /** Bytes of request bodies read ahead of their upstream connection (server.requestBufferTotal bounds them): the process's. */
  readonly requestBufferBytes: Gauge = new Gauge({
    name: 'portcullis_request_buffer_bytes',
    help: 'Bytes of request bodies reserved to be read ahead of their upstream connection (read whole first, or read on while queued), bounded by server.requestBufferTotal.',
    aggregator: 'sum',
    registers: [this.registry],
    collect: () => { this.requestBufferBytes.set(bodyBytesReserved()) }
  })

  /** HTTP/2 connections the gateway cut for abusing the protocol (server.http2.rapidReset, .settingsFlood). */
  readonly http2Cut = new Counter({
    name: 'portcullis_http2_connections_cut_total',
    help: 'HTTP/2 client connections closed with GOAWAY ENHANCE_YOUR_CALM, by reason (rapid_reset, settings_flood, header_list_size).',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  /** Log lines this process dropped: its reader fell more than 4 MiB of them behind, or had gone (see StdoutLines). */
  readonly logLinesDropped: Counter = new Counter({
    name: 'portcullis_log_lines_dropped_total',
    help: 'Log lines dropped: the stdout reader fell more than 4 MiB of lines behind (stalled, or slower than the gateway), or had gone.',
    registers: [this.registry],
    // The logger's count, read at each scrape.
    collect: () => { this.logLinesDropped.reset(); this.logLinesDropped.inc(droppedLogLines()) }
  })

  /** Upstreams of the runtimes in service, read when metrics are scraped (see watchUpstreams). */
  readonly #upstreams = new Set<ReadonlyMap<string, Upstream>>()

  /** Upstreams of the runtimes a reload replaced, still draining (see watchRetired). */
  #retired: () => Iterable<ReadonlyMap<string, Upstream>> = () => []

  /** 1 when a target takes traffic: passing active checks, not ejected, its breaker letting requests (a probe) through. */
  // Across workers (cluster /metrics), a target counts as healthy only if every worker sends to it.
  readonly upstreamTargetHealthy = this.#targetGauge('portcullis_upstream_target_healthy',
    'Whether a target takes traffic (1) or not (0): active health, passive ejection and breaker combined.', 'min',
    (t, now) => downReasons(t.healthy, t.outlier.ejected(now), breakerDown(t.breaker, now)).length === 0 ? 1 : 0)

  /** 0 closed, 1 half-open, 2 open; absent for upstreams without a circuit breaker. */
  readonly upstreamBreakerState = this.#targetGauge('portcullis_upstream_breaker_state',
    'Circuit breaker of a target: 0 closed, 1 half-open, 2 open.', 'max',
    t => t.breaker === undefined ? undefined : BREAKER_VALUE[t.breaker.state])

  /** This one, idle and queue length count what retired configs still hold too (see watchRetired). */
  readonly upstreamConnectionsInUse = this.#targetGauge('portcullis_upstream_connections_in_use',
    'Connections to a target busy with a request.', 'sum',
    t => { const s = t.pool.stats; return s.connected - s.free }, true)

  /** Store commands that failed (error or commandTimeout), by store. */
  readonly storeErrors = new Counter({
    name: 'portcullis_store_errors_total',
    help: 'Store commands that failed (error, timeout, store unreachable), by store.',
    labelNames: ['store'] as const,
    registers: [this.registry]
  })

  /** Entries a memory store dropped for room before they expired, by part: rate-limit counters among the scripted ones. */
  readonly storeEvictions = new Counter({
    name: 'portcullis_store_evictions_total',
    help: 'Entries a memory store evicted (least recently used, full) before they expired, by store and part (values: what plugins set, such as cached responses; scripted: keys scripts create, such as rate-limit counters).',
    labelNames: ['store', 'part'] as const,
    registers: [this.registry]
  })

  /** Observed once per store command: plain numbers per store, no allocation (see BucketHistogram). */
  readonly storeCommandDuration = new BucketHistogram({
    name: 'portcullis_store_command_duration_seconds',
    help: 'Time of one store command (Redis stores), by store.',
    label: 'store',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registry: this.registry
  })

  #stores: () => StoreSnapshot[] = () => []

  readonly storeUp = new Gauge({
    name: 'portcullis_store_up',
    help: 'Whether a store is connected (1) or not (0).',
    labelNames: ['store'] as const,
    aggregator: 'min',
    registers: [this.registry],
    collect: () => {
      this.storeUp.reset()
      for (const s of this.#stores()) this.storeUp.set({ store: s.name }, s.state === 'up' ? 1 : 0)
    }
  })

  readonly storeNodesDown = new Gauge({
    name: 'portcullis_store_nodes_down',
    help: 'Redis Cluster nodes a store cannot reach while the store as a whole is up (the keys they hold fail).',
    labelNames: ['store'] as const,
    aggregator: 'max',
    registers: [this.registry],
    collect: () => {
      this.storeNodesDown.reset()
      for (const s of this.#stores()) if (s.nodesDown !== undefined) this.storeNodesDown.set({ store: s.name }, s.nodesDown.length)
    }
  })

  /** What of each watched upstream's Upstream.dnsLookups the counter below has counted. */
  readonly #dnsCounted = new WeakMap<Upstream, { ok: number, failed: number }>()

  /**
   * DNS discovery's lookups, by upstream and result (ok | failed): counted by the upstreams, added
   * here when scraped (and when a runtime stops being watched), so the counter goes on across
   * reloads. At 0 from the start for every upstream with a `resolve: dns` entry.
   */
  readonly dnsLookups: Counter<'upstream' | 'result'> = new Counter({
    name: 'portcullis_dns_lookups_total',
    help: 'DNS discovery lookups (one per resolve: dns entry and round), by upstream and result (ok, failed: an error, no address, or none usable).',
    labelNames: ['upstream', 'result'] as const,
    registers: [this.registry],
    collect: () => { for (const map of this.#upstreams) this.#countDnsLookups(map) }
  })

  /** Adds what `upstreams` looked up since last counted; `kept`: only for the upstreams it has. */
  #countDnsLookups (upstreams: ReadonlyMap<string, Upstream>, kept?: ReadonlyMap<string, Upstream>): void {
    for (const u of upstreams.values()) {
      if (!u.config.targets.some(t => t.resolve === 'dns') || kept?.has(u.name) === false) continue
      const counted = this.#dnsCounted.get(u) ?? { ok: 0, failed: 0 }
      this.#dnsCounted.set(u, { ...u.dnsLookups })
      this.dnsLookups.inc({ upstream: u.name, result: 'ok' }, u.dnsLookups.ok - counted.ok)
      this.dnsLookups.inc({ upstream: u.name, result: 'failed' }, u.dnsLookups.failed - counted.failed)
    }
  }

  readonly upstreamConnectionsIdle = this.#targetGauge('portcullis_upstream_connections_idle',
    'Connections to a target open and free.', 'sum',
    t => t.pool.stats.free, true)

  readonly upstreamQueueLength = this.#targetGauge('portcullis_upstream_queue_length',
    'Requests waiting for a free connection of a target.', 'sum',
    t => t.waiting.length, true)

  constructor (options: { defaultMetrics?: boolean } = {}) {
    // Every result exists at 0 from the start: else the first failure after a start would appear at 1,
    // no increase() for a graph to see.
    for (const result of RELOAD_RESULTS) this.configReloads.inc({ result }, 0)
    this.configLastReloadSuccessful.set(1)
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' })
  }

  /** This process's metrics in `format`. */
  async exposition (format: ExpositionFormat): Promise<string> {
    return format === 'openmetrics' ? openMetricsText(await this.registry.getMetricsAsJSON()) : this.registry.metrics()
  }

  /** The routes and upstreams of the config in service, once told (see inService). */
  #inService: { routes: ReadonlySet<string>, upstreams: ReadonlyMap<string, Upstream> } | undefined

  /**
   * A config with `routes` and `upstreams` is in service (the process's first, or one a reload put in;
   * a cluster's primary tells it of every reload's): the series of every other
   * route and upstream (the `route` and `upstream` labels of request, upstream and plugin metrics),
   * and the ejection series of targets an upstream no longer has, are removed, at reload time, never
   * per request. Those kept go on counting, as the next config's children find the same entries.
   */
  inService (routes: ReadonlySet<string>, upstreams: ReadonlyMap<string, Upstream>): void {
    this.#inService = { routes, upstreams }
    this.dropRetired()
  }

  /**
   * Removes the series of routes, upstreams and targets not in service. Again once a retired runtime
   * has ended: its last requests (and plugins' gauges) may have brought back a series it alone had.
   */
  dropRetired (): void {
    if (this.#inService === undefined) return
    const { routes, upstreams } = this.#inService
    const keepRoute = (route: string) => route === UNMATCHED_ROUTE || routes.has(route)
    const keepUpstream = (upstream: string) => upstreams.has(upstream)
    for (const metric of this.registry.getMetricsAsArray() as unknown[]) {
      if (metric instanceof BucketHistogram) {
        metric.retain('route', keepRoute)
        metric.retain('upstream', keepUpstream)
      } else {
        dropSeries(metric, 'route', keepRoute)
        dropSeries(metric, 'upstream', keepUpstream)
      }
    }
    // Targets a kept upstream no longer has (DNS's current ones included).
    for (const { labels } of Object.values((this.upstreamEjections as unknown as SeriesInternals).hashMap ?? {})) {
      const { upstream, target } = labels ?? {}
      if (upstreams.get(String(upstream))?.targets.some(t => t.url === target) === false) this.upstreamEjections.remove({ upstream: String(upstream), target: String(target) })
    }
  }

  /**
   * DNS discovery removed the targets at `urls` from `upstream`: their ejection series go (addresses
   * come and go: kept, they would pile up until a restart), unless a target of that upstream in
   * service still has the address (another entry's). The gauges by target, read at scrape time,
   * lose them by themselves.
   */
  targetsRemoved (upstream: string, urls: readonly string[]): void {
    for (const target of urls) {
      if (![...this.#upstreams].some(map => map.get(upstream)?.targets.some(t => t.url === target))) this.upstreamEjections.remove({ upstream, target })
    }
  }

  /** No config uses the store `name` any more: its series go (a later store of that name starts anew). */
  storeGone (name: string): void {
    const keep = (store: string) => store !== name
    for (const metric of [this.storeErrors, this.storeEvictions]) dropSeries(metric, 'store', keep)
    this.storeCommandDuration.retain('store', keep)
  }

  /** Reports the stores `snapshot` returns (the process's store registry). */
  watchStores (snapshot: () => StoreSnapshot[]): void {
    this.#stores = snapshot
  }

  /**
   * DNS discovery added the targets at `urls` to `upstream`: their ejection series start at 0
   * (see watchUpstreams), if a runtime watched has them (not one a reload retired).
   */
  targetsAdded (upstream: string, urls: readonly string[]): void {
    for (const target of urls) {
      if ([...this.#upstreams].some(map => map.get(upstream)?.targets.some(t => t.url === target))) this.upstreamEjections.inc({ upstream, target }, 0)
    }
  }

  /**
   * Reports the targets of `upstreams` until the returned function is called (when their runtime is disposed).
   * Their ejection series start at 0: a first ejection at 1 would show no increase().
   */
  watchUpstreams (upstreams: ReadonlyMap<string, Upstream>): () => void {
    this.#upstreams.add(upstreams)
    for (const u of upstreams.values()) for (const t of u.targets) this.upstreamEjections.inc({ upstream: u.name, target: t.url }, 0)
    return () => {
      // Lookups since the last scrape still count, for the upstreams a reload kept (the others' series are gone).
      if (this.#upstreams.delete(upstreams)) this.#countDnsLookups(upstreams, this.#inService?.upstreams)
    }
  }

  /**
   * Also reports what the upstreams `retired` returns (those of runtimes a reload replaced, until
   * they have drained) hold on the targets in service, added to their connection and queue gauges:
   * each config has its own pools, which the old requests keep until they end.
   */
  watchRetired (retired: () => Iterable<ReadonlyMap<string, Upstream>>): void {
    this.#retired = retired
  }

  /**
   * A gauge per upstream and target whose values are read at scrape time: nothing to update on the hot path.
   * `addRetired`: the same target's value in retired runtimes is added (a count of connections or requests).
   */
  #targetGauge (name: string, help: string, aggregator: 'min' | 'max' | 'sum', value: (t: Target, now: number) => number | undefined, addRetired = false) {
    const upstreams = this.#upstreams
    const retired = () => this.#retired()
    return new Gauge({
      name,
      help,
      aggregator,
      labelNames: ['upstream', 'target'] as const,
      registers: [this.registry],
      collect () {
        this.reset()
        const now = performance.now()
        // During a reload both runtimes are watched; the newer one, last in the set, wins.
        const shown = new Set<string>()
        for (const map of upstreams) {
          for (const u of map.values()) {
            for (const t of u.targets) {
              const v = value(t, now)
              if (v === undefined) continue
              this.set({ upstream: u.name, target: t.url }, v)
              if (addRetired) shown.add(`${u.name} ${t.url}`)
            }
          }
        }
        if (!addRetired) return
        // Only onto series in service: those of upstreams and targets the config dropped are gone.
        for (const map of retired()) {
          for (const u of map.values()) {
            for (const t of u.targets) {
              const v = value(t, now)
              if (v !== undefined && v > 0 && shown.has(`${u.name} ${t.url}`)) this.inc({ upstream: u.name, target: t.url }, v)
            }
          }
        }
      }
    })
  }
}

/** Deletes the series of a prom-client metric whose value of `label` `keep` refuses (its hash map, as remove() does). */
function dropSeries (metric: unknown, label: string, keep: (value: string) => boolean): void {
  const { labelNames, hashMap } = metric as SeriesInternals
  if (hashMap === undefined || labelNames?.includes(label) !== true) return
  for (const [hash, entry] of Object.entries(hashMap)) {
    const value = entry.labels?.[label]
    if (value !== undefined && !keep(String(value))) delete hashMap[hash]
  }
}
