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
 * another type or other labels, or for a name of the gateway's own metrics (or of their family:
 * portcullis_http_requests for portcullis_http_requests_total), is an error at setup.
 */
export interface PluginMetrics {
  counter<L extends string = string> (options: MetricOptions<L>): Counter<L>
  histogram<L extends string = string> (options: HistogramOptions<L>): Histogram<L>
  gauge<L extends string = string> (options: MetricOptions<L>): Gauge<L>
}

type AnyMetric = Counter | Histogram | Gauge
type MetricClass = typeof Counter | typeof Histogram | typeof Gauge

// The names plugins made in each registry (every config's plugins, so that a reload finds its metrics
// again): any other metric there is the gateway's own.
const madeByPlugins = new WeakMap<Registry, Set<string>>()

// A metric's family: its name without the suffix of one of its samples (counter_total, histogram_bucket...).
const family = (name: string) => name.replace(/_(?:total|created|bucket|sum|count|info)$/, '')

/** Why a plugin may not have `name`: one of the gateway's own metrics, or one whose samples would mix with its. */
function reservedBy (registry: Registry, ours: ReadonlySet<string>, name: string): string | undefined {
  const wanted = family(name)
  return registry.getMetricsAsArray().find(m => !ours.has(m.name) && family(m.name) === wanted)?.name
}

export function pluginMetrics (registry: Registry): PluginMetrics {
  let ours = madeByPlugins.get(registry)
  if (ours === undefined) madeByPlugins.set(registry, ours = new Set())
  const make = <M extends AnyMetric>(Kind: MetricClass, options: MetricOptions<string> & { buckets?: readonly number[] }): M => {
    if (!/^portcullis_[a-z0-9_]+$/.test(options.name)) throw new TypeError(`metric "${options.name}" must be named portcullis_<lower_case_words>`)
    const core = ours.has(options.name) ? undefined : reservedBy(registry, ours, options.name)
    if (core !== undefined) {
      throw new TypeError(`metric "${options.name}" is ${core === options.name ? 'one of the gateway\'s own' : `taken by the gateway's own ${core}`}: name it after the plugin (portcullis_<plugin>_...)`)
    }
    const labelNames = [...(options.labelNames ?? [])]
    const existing = registry.getSingleMetric(options.name) as (AnyMetric & { labelNames?: string[] }) | undefined
    if (existing !== undefined) {
      if (!(existing instanceof Kind) || JSON.stringify([...(existing.labelNames ?? [])].sort()) !== JSON.stringify([...labelNames].sort())) {
        throw new TypeError(`metric "${options.name}" already exists with another type or other labels`)
      }
      return existing as M
    }
    const { buckets, ...rest } = options
    const made = new (Kind as new (o: object) => M)({ ...rest, labelNames, ...(buckets === undefined ? {} : { buckets: [...buckets] }), registers: [registry] })
    ours.add(options.name)
    return made
  }
  return {
    // Children resolved at setup and kept are cheap to increment on the request path.
    counter: options => make(FastCounter, options),
    histogram: options => make(Histogram, options),
    gauge: options => make(Gauge, options)
  }
}
