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
 * portcullis_http_requests for portcullis_http_requests_total), is an error at setup. A name is the
 * plugin's that asked for it first: another plugin gets it only by passing the very same options
 * object (a declaration both import, as the built-in auth plugins share portcullis_auth_failures_total).
 */
export interface PluginMetrics {
  counter<L extends string = string> (options: MetricOptions<L>): Counter<L>
  histogram<L extends string = string> (options: HistogramOptions<L>): Histogram<L>
  gauge<L extends string = string> (options: MetricOptions<L>): Gauge<L>
}

/** The plugin metrics of a registry: each plugin's ctx.metrics (forPlugin), or metrics no plugin owns (the methods themselves). */
export interface PluginMetricsSource extends PluginMetrics {
  forPlugin (plugin: string): PluginMetrics
}

type AnyMetric = Counter | Histogram | Gauge
type MetricClass = typeof Counter | typeof Histogram | typeof Gauge

// The names plugins made in each registry (every config's plugins, so that a reload finds its metrics
// again): any other metric there is the gateway's own. Each with the plugin that asked for it first
// (undefined: none) and the options object it passed, the declaration other plugins may share it by.
interface Owner { readonly plugin: string | undefined, readonly declaration: object }
const madeByPlugins = new WeakMap<Registry, Map<string, Owner>>()

// A metric's family: its name without the suffix of one of its samples (counter_total, histogram_bucket...).
const family = (name: string) => name.replace(/_(?:total|created|bucket|sum|count|info)$/, '')

/** Why a plugin may not have `name`: one of the gateway's own metrics, or one whose samples would mix with its. */
function reservedBy (registry: Registry, ours: ReadonlyMap<string, Owner>, name: string): string | undefined {
  const wanted = family(name)
  return registry.getMetricsAsArray().find(m => !ours.has(m.name) && family(m.name) === wanted)?.name
}

/** Why `plugin` may not have `name`, another plugin's not shared with it (see PluginMetrics), or undefined. */
function ownedBy (owner: Owner | undefined, plugin: string | undefined, options: object): string | undefined {
  if (owner === undefined || owner.plugin === plugin || owner.declaration === options || owner.plugin === undefined) return undefined
  return owner.plugin
}

export function pluginMetrics (registry: Registry): PluginMetricsSource {
  let ours = madeByPlugins.get(registry)
  if (ours === undefined) madeByPlugins.set(registry, ours = new Map())
  const made = ours
  const make = <M extends AnyMetric>(plugin: string | undefined, Kind: MetricClass, options: MetricOptions<string> & { buckets?: readonly number[] }): M => {
    if (!/^portcullis_[a-z0-9_]+$/.test(options.name)) throw new TypeError(`metric "${options.name}" must be named portcullis_<lower_case_words>`)
    const core = made.has(options.name) ? undefined : reservedBy(registry, made, options.name)
    if (core !== undefined) {
      throw new TypeError(`metric "${options.name}" is ${core === options.name ? 'one of the gateway\'s own' : `taken by the gateway's own ${core}`}: name it after the plugin (portcullis_<plugin>_...)`)
    }
    const owner = ownedBy(made.get(options.name), plugin, options)
    if (owner !== undefined) {
      throw new TypeError(`metric "${options.name}" is plugin ${owner}'s (it asked for it first): plugin ${String(plugin)} may not write into it; ` +
        'name it after the plugin (portcullis_<plugin>_...), or share one declaration (the same options object) between the two')
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
    const metric = new (Kind as new (o: object) => M)({ ...rest, labelNames, ...(buckets === undefined ? {} : { buckets: [...buckets] }), registers: [registry] })
    made.set(options.name, { plugin, declaration: options })
    return metric
  }
  const of = (plugin: string | undefined): PluginMetrics => ({
    // Children resolved at setup and kept are cheap to increment on the request path.
    counter: options => make(plugin, FastCounter, options),
    histogram: options => make(plugin, Histogram, options),
    gauge: options => make(plugin, Gauge, options)
  })
  return { ...of(undefined), forPlugin: of }
}
