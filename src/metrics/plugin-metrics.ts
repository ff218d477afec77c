import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { FastCounter } from './fast-counter.ts'

export interface MetricOptions<L extends string> {
  /** `portcullis_<plugin>_<what>_<unit>`, e.g. portcullis_ratelimit_requests_total. */
  readonly name: string
  readonly help: string
  /** Label names; their values must be bounded (routes, reasons, results), never ids, paths or addresses. */
  readonly labelNames?: readonly L[]
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, in base units (seconds, bytes). */
  readonly buckets?: readonly number[]
}

/**
 * Metrics for plugins, in the gateway's registry. Asking twice for the same name (another route,
 * the next config) returns the same metric, so counts go on across reloads; asking for it with
 * another type or other labels is an error at setup.
 */
export interface PluginMetrics {
  counter<L extends string = string> (options: MetricOptions<L>): Counter<L>
  histogram<L extends string = string> (options: HistogramOptions<L>): Histogram<L>
  gauge<L extends string = string> (options: MetricOptions<L>): Gauge<L>
}

type AnyMetric = Counter | Histogram | Gauge
type MetricClass = typeof Counter | typeof Histogram | typeof Gauge

export function pluginMetrics (registry: Registry): PluginMetrics {
  const make = <M extends AnyMetric>(Kind: MetricClass, options: MetricOptions<string> & { buckets?: readonly number[] }): M => {
    if (!/^portcullis_[a-z0-9_]+$/.test(options.name)) throw new TypeError(`metric "${options.name}" must be named portcullis_<lower_case_words>`)
    const labelNames = [...(options.labelNames ?? [])]
    const existing = registry.getSingleMetric(options.name) as (AnyMetric & { labelNames?: string[] }) | undefined
    if (existing !== undefined) {
      if (!(existing instanceof Kind) || JSON.stringify([...(existing.labelNames ?? [])].sort()) !== JSON.stringify([...labelNames].sort())) {
        throw new TypeError(`metric "${options.name}" already exists with another type or other labels`)
      }
      return existing as M
    }
    const { buckets, ...rest } = options
    return new (Kind as new (o: object) => M)({ ...rest, labelNames, ...(buckets === undefined ? {} : { buckets: [...buckets] }), registers: [registry] })
  }
  return {
    // Children resolved at setup and kept are cheap to increment on the request path.
    counter: options => make(FastCounter, options),
    histogram: options => make(Histogram, options),
    gauge: options => make(Gauge, options)
  }
}
