import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Target } from '../upstreams/target.ts'
import type { Upstream } from '../upstreams/upstream.ts'

const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const

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

  /** Upstreams of the runtimes in service, read when metrics are scraped (see watchUpstreams). */
  readonly #upstreams = new Set<ReadonlyMap<string, Upstream>>()

  /** 1 when a target takes traffic: passing active checks, not ejected, breaker not open. */
  // Across workers (cluster /metrics), a target counts as healthy only if every worker sends to it.
  readonly upstreamTargetHealthy = this.#targetGauge('portcullis_upstream_target_healthy',
    'Whether a target takes traffic (1) or not (0): active health, passive ejection and breaker combined.', 'min',
    (t, now) => t.healthy && !t.outlier.ejected(now) && t.breaker?.state !== 'open' ? 1 : 0)

  /** 0 closed, 1 half-open, 2 open; absent for upstreams without a circuit breaker. */
  readonly upstreamBreakerState = this.#targetGauge('portcullis_upstream_breaker_state',
    'Circuit breaker of a target: 0 closed, 1 half-open, 2 open.', 'max',
    t => t.breaker === undefined ? undefined : BREAKER_VALUE[t.breaker.state])

  readonly upstreamConnectionsInUse = this.#targetGauge('portcullis_upstream_connections_in_use',
    'Connections to a target busy with a request.', 'sum',
    t => { const s = t.pool.stats; return s.connected - s.free })

  constructor (options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' })
  }

  /** Reports the targets of `upstreams` until the returned function is called (when their runtime is disposed). */
  watchUpstreams (upstreams: ReadonlyMap<string, Upstream>): () => void {
    this.#upstreams.add(upstreams)
    return () => { this.#upstreams.delete(upstreams) }
  }

  /** A gauge per upstream and target whose values are read at scrape time: nothing to update on the hot path. */
  #targetGauge (name: string, help: string, aggregator: 'min' | 'max' | 'sum', value: (t: Target, now: number) => number | undefined) {
    const upstreams = this.#upstreams
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
        for (const map of upstreams) {
          for (const u of map.values()) {
            for (const t of u.targets) {
              const v = value(t, now)
              if (v !== undefined) this.set({ upstream: u.name, target: t.url }, v)
            }
          }
        }
      }
    })
  }
}
