import { AggregatorRegistry } from 'prom-client'
import type { Metrics } from '../metrics/metrics.ts'
import type { WorkerPool } from './worker-pool.ts'

/**
 * One Prometheus exposition for the whole gateway: the primary's metrics (config reloads) and every
 * worker's, merged by prom-client's aggregator (counters summed; a metric may name another
 * aggregator, e.g. `min`, where summing makes no sense).
 */
export async function clusterMetricsText (own: Metrics, pool: WorkerPool): Promise<string> {
  const all = [await own.registry.getMetricsAsJSON(), ...await pool.metrics()]
  return AggregatorRegistry.aggregate(all).metrics()
}
