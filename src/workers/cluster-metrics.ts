import { AggregatorRegistry, Counter, Gauge, type Aggregator, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client'
import type { LoadedConfig } from '../config/load.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { UNMATCHED_ROUTE } from '../metrics/request-metrics.ts'
import { openMetricsText, type ExpositionFormat } from '../metrics/exposition.ts'
import { DEFAULT_STORE } from '../stores/registry.ts'
import { RESTART_REASONS, type RestartReason, type WorkerPool } from './worker-pool.ts'

type MetricJson = MetricObjectWithValues<MetricValue<string>>
type Sample = MetricValue<string> & { metricName?: string, exemplar?: { timestamp: number } }

/** A metric of workers that have exited: its series summed, by series key, and its shape (see shapeOf). */
interface DepartedMetric { metric: MetricJson, shape: Shape | undefined, samples: Map<string, Sample> }
type Departed = Map<string, DepartedMetric>

/** What the primary keeps between scrapes, so that counters summed over the workers never go down. */
interface Memory {
  /** Each live worker's last answer, by pid: stands in for it while it is too slow to answer. */
  readonly last: Map<number, MetricJson[]>
  readonly departed: Departed
  /**
   * Scrapes started, and those still waiting for answers: a scrape started before a worker departed
   * may bring an answer of it after another scrape added its counts to the departed.
   */
  started: number
  readonly running: Set<number>
  /** Departed pids, with the last scrape started when they departed: its answers and earlier ones from them are ignored. */
  readonly gone: Map<number, number>
  /** The config whose retired routes and upstreams were last removed from `departed`. */
  pruned: string
}

/** The config every worker has applied (a reload under way still counts as the one it replaces). */
export type AppliedConfig = Pick<LoadedConfig, 'hash' | 'config'>

const memories = new WeakMap<WorkerPool, Memory>()

/**
 * Process metrics whose sum over the processes means nothing, merged otherwise. The primary's come
 * first, and the first decides (AggregatorRegistry.aggregate): its start is the gateway's (prom-client
 * omits it from a merge), and the file descriptor limit is one process's (the highest). Event-loop
 * lag is the worst process's: prom-client averages it, and a mean of p99s hides a stalled worker.
 */
const AGGREGATORS: ReadonlyMap<string, Aggregator> = new Map([
  ['portcullis_process_start_time_seconds', 'first'],
  ['portcullis_process_max_fds', 'max'],
  ...['', '_p50', '_p90', '_p99'].map(q => [`portcullis_nodejs_eventloop_lag${q}_seconds`, 'max'] as const)
])

/**
 * The primary's metrics of its workers, on `registry`: how many serve (`serving`, read at each
 * scrape), and their restarts by reason (each at 0 from the start, so that the first shows as an
 * increase). Returns what counts a restart.
 */
export function workerMetrics (registry: Registry, serving: () => number): (reason: RestartReason) => void {
  // Registered: read at each scrape.
  new Gauge({
    name: 'portcullis_workers_serving',
    help: 'Worker processes serving traffic: on a config, and answering the primary\'s heartbeat.',
    registers: [registry],
    collect () { this.set(serving()) }
  })
  const restarts = new Counter({ name: 'portcullis_worker_restarts_total', help: 'Worker processes restarted, by reason: crashed, unresponsive, setup_failed.', labelNames: ['reason'], registers: [registry] })
  for (const reason of RESTART_REASONS) restarts.inc({ reason }, 0)
  return reason => restarts.inc({ reason })
}

/**
 * One Prometheus exposition for the whole gateway: the primary's metrics (config reloads) and every
 * worker's, merged by prom-client's aggregator (counters summed; a metric may name another
 * aggregator, e.g. `min`, where summing makes no sense). A worker that does not answer in time
 * counts with its last answer; one that exited leaves the counters and histograms of its last answer
 * in the sum: what it counted after that answer (since its last scrape) is lost with it.
 */
export async function clusterMetricsText (own: Metrics, pool: WorkerPool, format: ExpositionFormat, applied: AppliedConfig): Promise<string> {
  let memory = memories.get(pool)
  if (memory === undefined) memories.set(pool, memory = { last: new Map(), departed: new Map(), started: 0, running: new Set(), gone: new Map(), pruned: applied.hash })
  const scrape = ++memory.started
  memory.running.add(scrape)
  let all: MetricJson[][]
  try {
    const answers = await pool.metrics()
    const primary = (await own.registry.getMetricsAsJSON()).map(m => ({ ...m, aggregator: AGGREGATORS.get(m.name) ?? m.aggregator }))
    all = [primary, ...remember(memory, scrape, answers, pool.pids, applied)]
  } finally {
    memory.running.delete(scrape)
    // Kept while a scrape that may hold their answers runs: few, whatever the pids the OS reuses.
    const oldest = Math.min(...memory.running)
    for (const [pid, last] of memory.gone) if (last < oldest) memory.gone.delete(pid)
  }
  const merged = AggregatorRegistry.aggregate(all)
  if (format === 'prometheus') return merged.metrics()
  return openMetricsText(withExemplars(await merged.getMetricsAsJSON(), all.flat()))
}

/**
 * Records the workers' `answers` to `scrape` and returns what to sum: each live worker's last answer,
 * and the departed. Workers no longer `live` go to the departed: their counters and histograms (summed
 * ones) are added there, their gauges dropped. The departed hold a sample per series, however many
 * workers ended; a metric no live worker has any more, or has with another type, labels or buckets
 * (a later config made it anew), leaves them.
 */
function remember (memory: Memory, scrape: number, answers: ReadonlyArray<{ pid: number, metrics: MetricJson[] }>, live: readonly number[], applied: AppliedConfig): MetricJson[][] {
  for (const a of answers) if ((memory.gone.get(a.pid) ?? 0) < scrape) memory.last.set(a.pid, a.metrics)
  for (const [pid, metrics] of memory.last) {
    if (live.includes(pid)) continue
    memory.last.delete(pid)
    memory.gone.set(pid, memory.started)
    depart(memory.departed, metrics)
  }
  // Until a live worker answered (all restarting), nothing says which metrics are still in use.
  if (memory.last.size > 0) dropUnused(memory.departed, [...memory.last.values()])
  // As each worker does on reload: the series of routes, upstreams and stores the config no longer has go.
  // By the config's names, not the workers' series: a route that was not requested since its workers left has none.
  if (memory.pruned !== applied.hash) {
    memory.pruned = applied.hash
    prune(memory.departed, applied.config)
  }
  return [...memory.last.values(), [...memory.departed.values()].map(d => ({ ...d.metric, values: [...d.samples.values()] }))]
}

const seriesKey = (v: Sample) => `${v.metricName ?? ''}\u0000${JSON.stringify(Object.entries(v.labels).sort(([a], [b]) => a.localeCompare(b)))}`

/** The label names and buckets a metric's samples show (a worker's answer has no more). */
interface Shape { readonly labels: ReadonlySet<string>, readonly buckets: string }

/** undefined when it has no samples. */
function shapeOf (m: MetricJson): Shape | undefined {
  if (m.values.length === 0) return undefined
  const labels = new Set<string>()
  const bounds = new Set<string>()
  for (const v of m.values as Sample[]) {
    for (const [k, x] of Object.entries(v.labels)) {
      if (k === 'le' && v.metricName?.endsWith('_bucket') === true) bounds.add(String(x))
      else labels.add(k)
    }
  }
  return { labels, buckets: [...bounds].sort().join() }
}

const within = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => [...a].every(k => b.has(k))

/**
 * Whether `m` may be the metric the departed `d` counted: same type, and where both have samples,
 * the same buckets and label names one within the other's (a series may leave a label out, as
 * prom-client allows: `{route}` beside `{route, consumer}` is one metric, `{tenant}` another's).
 */
const sameMetric = (d: DepartedMetric, m: MetricJson) => {
  if (d.metric.type !== m.type) return false
  const shape = d.shape === undefined ? undefined : shapeOf(m)
  if (shape === undefined || d.shape === undefined) return true
  return shape.buckets === d.shape.buckets && (within(shape.labels, d.shape.labels) || within(d.shape.labels, shape.labels))
}

function depart (departed: Departed, metrics: MetricJson[]): void {
  for (const m of metrics) {
    // prom-client's types say MetricType is a numeric enum; at run time it is the string.
    const type = m.type as unknown
    if ((type !== 'counter' && type !== 'histogram') || m.aggregator !== 'sum') continue
    let d = departed.get(m.name)
    // Not the metric the departed counted (made anew since, with other labels or buckets): the older goes.
    if (d !== undefined && !sameMetric(d, m)) d = undefined
    if (d === undefined) departed.set(m.name, d = { metric: { ...m, values: [] }, shape: undefined, samples: new Map() })
    const shape = shapeOf(m)
    if (shape !== undefined) d.shape = d.shape === undefined ? shape : { labels: new Set([...d.shape.labels, ...shape.labels]), buckets: d.shape.buckets }
    for (const v of m.values as Sample[]) {
      const k = seriesKey(v)
      const seen = d.samples.get(k)
      if (seen === undefined) d.samples.set(k, { labels: v.labels, value: v.value, ...(v.metricName === undefined ? {} : { metricName: v.metricName }) })
      else seen.value += v.value
    }
  }
}

/**
 * Removes the departed metrics that no live worker's last answer (`live`) lists, or one lists with
 * another type or shape: no config running uses them (a plugin's, since removed), or one made them anew.
 */
function dropUnused (departed: Departed, live: ReadonlyArray<readonly MetricJson[]>): void {
  if (departed.size === 0) return
  const same = new Map<string, boolean>()
  for (const metrics of live) {
    for (const m of metrics) {
      const d = departed.get(m.name)
      if (d !== undefined) same.set(m.name, same.get(m.name) !== false && sameMetric(d, m))
    }
  }
  for (const name of departed.keys()) if (same.get(name) !== true) departed.delete(name)
}

/** The gateway's store metrics: a worker drops a store's series once no config uses it (see Metrics.storeGone); a plugin's by store keep theirs. */
const STORE_METRICS = 'portcullis_store_'

/** Removes the departed series whose route or upstream `config` does not have, and those of its stores' metrics whose store it does not have. */
function prune (departed: Departed, config: AppliedConfig['config']): void {
  const named = {
    route: new Set<unknown>([UNMATCHED_ROUTE, ...config.routes.map(r => r.name)]),
    upstream: new Set<unknown>(Object.keys(config.upstreams)),
    store: new Set<unknown>([DEFAULT_STORE, ...Object.keys(config.stores ?? {})])
  }
  const retired = (v: Sample, storeMetric: boolean) => (v.labels.route !== undefined && !named.route.has(v.labels.route)) ||
    (v.labels.upstream !== undefined && !named.upstream.has(v.labels.upstream)) || (storeMetric && v.labels.store !== undefined && !named.store.has(v.labels.store))
  for (const [name, d] of departed) {
    const storeMetric = name.startsWith(STORE_METRICS)
    for (const [k, v] of d.samples) if (retired(v, storeMetric)) d.samples.delete(k)
    if (d.samples.size === 0) departed.delete(name)
  }
}

/** The aggregator drops exemplars: each merged bucket gets back the latest of the workers'. */
function withExemplars (merged: MetricJson[], all: MetricJson[]): MetricJson[] {
  const latest = new Map<string, Sample['exemplar']>()
  const key = (metric: string, v: Sample) => `${metric}\u0000${v.metricName ?? ''}\u0000${JSON.stringify(v.labels)}`
  for (const m of all) {
    for (const v of m.values as Sample[]) {
      const e = v.exemplar
      const k = key(m.name, v)
      if (e != null && (latest.get(k)?.timestamp ?? -1) < e.timestamp) latest.set(k, e)
    }
  }
  if (latest.size === 0) return merged
  for (const m of merged) {
    for (const v of m.values as Sample[]) {
      const e = latest.get(key(m.name, v))
      if (e !== undefined) v.exemplar = e
    }
  }
  return merged
}
