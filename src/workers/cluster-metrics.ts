import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import type { Metrics } from '../metrics/metrics.ts'
import { openMetricsText, type ExpositionFormat } from '../metrics/exposition.ts'
import type { WorkerPool } from './worker-pool.ts'

type MetricJson = MetricObjectWithValues<MetricValue<string>>
type Sample = MetricValue<string> & { metricName?: string, exemplar?: { timestamp: number } }

/**
 * One Prometheus exposition for the whole gateway: the primary's metrics (config reloads) and every
 * worker's, merged by prom-client's aggregator (counters summed; a metric may name another
 * aggregator, e.g. `min`, where summing makes no sense).
 */
export async function clusterMetricsText (own: Metrics, pool: WorkerPool, format: ExpositionFormat): Promise<string> {
  const all = [await own.registry.getMetricsAsJSON(), ...await pool.metrics()]
  const merged = AggregatorRegistry.aggregate(all)
  if (format === 'prometheus') return merged.metrics()
  return openMetricsText(withExemplars(await merged.getMetricsAsJSON(), all.flat()))
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
