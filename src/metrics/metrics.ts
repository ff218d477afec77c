import { Counter, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * The gateway's Prometheus metrics. One instance per process, created at start and handed to
 * each runtime, so counters survive config reloads. Add a metric here, next to its siblings.
 */
export class Metrics {
  readonly registry = new Registry()

  /** Config reload attempts by result (`success` | `invalid` | `failed`). */
  readonly configReloads = new Counter({
    name: 'portcullis_config_reloads_total',
    help: 'Config reload attempts, by result.',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  constructor (options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' })
  }
}
