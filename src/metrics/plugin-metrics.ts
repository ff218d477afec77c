import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { FastCounter } from './fast-counter.ts'

export interface MetricOptions<L extends string> {
  /** `portcullis_<plugin>_<what>_<unit>`, e.g. portcullis_ratelimit_requests_total (a counter's ends in _total). */
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
 * Metrics for plugins, in the gateway's registry. A plugin names its own metrics
 * `portcullis_<plugin, - as _>_...` (plugin rate-limit: portcullis_rate_limit_...), a counter's ending in
 * `_total`: any other name is an error at setup, unless another plugin made it and this one passes the very same options object (a
 * declaration both import, as the built-in auth plugins share portcullis_auth_failures_total). Asking
 * twice for the same name (another route, the next config) returns the same metric, so counts go on
 * across reloads; asking for it with another type, other labels or other buckets, for another plugin's,
 * or for a name of the gateway's own metrics, or one sharing a family or sample name with any metric
 * there, the gateway's or a plugin's (portcullis_http_requests, OpenMetrics' family of
 * portcullis_http_requests_total), is an error at setup. Once no config running uses a metric, it leaves
 * the registry and its name is free again (see PluginMetricsSource.release).
 */
export interface PluginMetrics {
  counter<L extends string = string> (options: MetricOptions<L>): Counter<L>
  histogram<L extends string = string> (options: HistogramOptions<L>): Histogram<L>
  gauge<L extends string = string> (options: MetricOptions<L>): Gauge<L>
}

/** The plugin metrics of one config: each plugin's ctx.metrics (forPlugin), or metrics no plugin owns (the methods themselves). */
export interface PluginMetricsSource extends PluginMetrics {
  forPlugin (plugin: string): PluginMetrics
  /**
   * The config is disposed (or failed to build): a metric no other config running asked for leaves the
   * registry, and its name is anyone's again (a plugin since removed no longer holds it until a restart).
   * The same plugin asking for it again, same type, labels and buckets, gets the same metric, its counts kept.
   */
  release (): void
}

type AnyMetric = Counter | Histogram | Gauge
type MetricClass = typeof Counter | typeof Histogram | typeof Gauge

// A name plugins made: the plugin that asked for it first (undefined: none) and the options object it
// passed, the declaration other plugins may share it by; `users`, the configs running that asked for it.
interface Made { readonly name: string, readonly plugin: string | undefined, readonly declaration: object, readonly metric: AnyMetric, readonly users: Set<object> }
// Per registry: the names plugins made (any other metric there is the gateway's own), and those no
// config uses any more, out of the registry but kept for the next to ask with the same type and labels.
interface Names { readonly made: Map<string, Made>, readonly unused: Map<string, AnyMetric> }
const byRegistry = new WeakMap<Registry, Names>()

// Built-in metrics named before the prefix rule, in dashboards since: theirs still. A user plugin
// cannot take a built-in's name (loadConfig refuses it).
const NAMED_BEFORE: ReadonlyMap<string, readonly string[]> = new Map([
  ['portcullis_auth_failures_total', ['key-auth', 'basic-auth', 'jwt-auth', 'acl']],
  ['portcullis_jwt_jwks_fetches_total', ['jwt-auth']],
  ['portcullis_ratelimit_requests_total', ['rate-limit']]
])

/** Where `plugin`'s metric names start (plugin names are lower-case letters, digits and dashes). */
const prefixOf = (plugin: string) => `portcullis_${plugin.replaceAll('-', '_')}_`

function isPlugins (plugin: string, name: string): boolean {
  const prefix = prefixOf(plugin)
  return (name.startsWith(prefix) && name.length > prefix.length) || NAMED_BEFORE.get(name)?.includes(plugin) === true
}

// The names a metric takes in a scrape: its family's (OpenMetrics names a counter's without _total)
// and its samples'. Two metrics sharing one cannot both be served: an OpenMetrics scrape cannot show
// a family twice (openMetricsText), and their samples would mix.
const SAMPLES: Readonly<Record<string, readonly string[]>> = { counter: ['_total', '_created'], histogram: ['_bucket', '_count', '_sum', '_created'], summary: ['_count', '_sum', '_created'] }
function namesOf (name: string, type: string): string[] {
  const family = type === 'counter' ? name.replace(/_total$/, '') : name
  return [family, ...(SAMPLES[type] ?? []).map(suffix => family + suffix)]
}

/** The registered metric (the gateway's own, or a plugin's) with a name that `name`, a `type`, would take too, and that name. */
function clashing (registry: Registry, name: string, type: string): { metric: string, shared: string } | undefined {
  const wanted = new Set(namesOf(name, type))
  for (const m of registry.getMetricsAsArray() as unknown as ReadonlyArray<{ name: string, type: string }>) {
    const shared = namesOf(m.name, m.type).find(n => wanted.has(n))
    if (shared !== undefined) return { metric: m.name, shared }
  }
  return undefined
}

// prom-client's own, for a histogram asked without buckets.
const DEFAULT_BUCKETS = (new Histogram({ name: 'prom_client_default_buckets', help: 'x', registers: [] }) as unknown as { upperBounds: readonly number[] }).upperBounds

/** How `metric` differs from what is asked (undefined: it does not): a histogram's buckets too, else its counts would mix two bucket sets. */
function otherShape (metric: AnyMetric, Kind: MetricClass, labelNames: readonly string[], buckets: readonly number[] | undefined): string | undefined {
  if (!(metric instanceof Kind) || JSON.stringify([...((metric as { labelNames?: string[] }).labelNames ?? [])].sort()) !== JSON.stringify([...labelNames].sort())) return 'another type or other labels'
  const has = (metric as { upperBounds?: readonly number[] }).upperBounds
  if (has !== undefined && JSON.stringify(has) !== JSON.stringify(buckets ?? DEFAULT_BUCKETS)) return `other buckets (${has.join(', ')})`
  return undefined
}

export function pluginMetrics (registry: Registry): PluginMetricsSource {
  let names = byRegistry.get(registry)
  if (names === undefined) byRegistry.set(registry, names = { made: new Map(), unused: new Map() })
  const { made, unused } = names
  // This config: what it asked for, given back by release().
  const config = {}
  const asked = new Set<Made>()
  const make = <M extends AnyMetric>(plugin: string | undefined, Kind: MetricClass, options: MetricOptions<string> & { buckets?: readonly number[] }): M => {
    const { name } = options
    if (!/^portcullis_[a-z0-9_]+$/.test(name)) throw new TypeError(`metric "${name}" must be named portcullis_<lower_case_words>`)
    // OpenMetrics names a counter's sample <name>_total whatever its name: without the suffix, the
    // two formats would name its series differently (see openMetricsText).
    if (Kind === FastCounter && !name.endsWith('_total')) {
      throw new TypeError(`counter "${name}"${plugin === undefined ? '' : ` of plugin ${plugin}`} must be named <what>_total: ${name}_total`)
    }
    const clash = made.has(name) ? undefined : clashing(registry, name, Kind === FastCounter ? 'counter' : Kind === Histogram ? 'histogram' : 'gauge')
    if (clash !== undefined) {
      const owner = made.get(clash.metric)
      throw new TypeError(owner === undefined
        ? `metric "${name}" is ${clash.metric === name ? 'one of the gateway\'s own' : `taken by the gateway's own ${clash.metric}`}: name it after the plugin (portcullis_<plugin>_...)`
        : `metric "${name}" is taken by ${owner.plugin === undefined ? '' : `plugin ${owner.plugin}'s `}${clash.metric}: OpenMetrics scrapes would name both ${clash.shared}; name it otherwise`)
    }
    let entry = made.get(name)
    if (entry === undefined || (entry.plugin !== plugin && entry.declaration !== options)) {
      if (entry?.plugin !== undefined) {
        throw new TypeError(`metric "${name}" is plugin ${entry.plugin}'s (it asked for it first): plugin ${String(plugin)} may not write into it; ` +
          'name it after the plugin (portcullis_<plugin>_...), or share one declaration (the same options object) between the two')
      }
      if (plugin !== undefined && !isPlugins(plugin, name)) {
        throw new TypeError(`metric "${name}" is not named after plugin ${plugin}: its metrics are named ${prefixOf(plugin)}<what>_<unit>` +
          (entry === undefined ? '' : ', or share the declaration (the same options object) of the plugin that made it'))
      }
    }
    const labelNames = [...(options.labelNames ?? [])]
    const other = entry === undefined ? undefined : otherShape(entry.metric, Kind, labelNames, options.buckets)
    if (entry !== undefined && other !== undefined) {
      throw new TypeError(`metric "${name}" already exists with ${other}, made by ${entry.plugin === undefined ? 'no plugin' : `plugin ${entry.plugin}`} ` +
        'in a config still running: it can change once no running config uses it (a reload without it first, or a restart)')
    }
    if (entry === undefined) {
      let metric = unused.get(name)
      unused.delete(name)
      if (metric !== undefined && otherShape(metric, Kind, labelNames, options.buckets) === undefined) {
        registry.registerMetric(metric)
      } else {
        const { buckets, ...rest } = options
        metric = new (Kind as new (o: object) => AnyMetric)({ ...rest, labelNames, ...(buckets === undefined ? {} : { buckets: [...buckets] }), registers: [registry] })
      }
      made.set(name, entry = { name, plugin, declaration: options, metric, users: new Set() })
    }
    entry.users.add(config)
    asked.add(entry)
    return entry.metric as M
  }
  const of = (plugin: string | undefined): PluginMetrics => ({
    // Children resolved at setup and kept are cheap to increment on the request path.
    counter: options => make(plugin, FastCounter, options),
    histogram: options => make(plugin, Histogram, options),
    gauge: options => make(plugin, Gauge, options)
  })
  const release = () => {
    for (const entry of asked) {
      entry.users.delete(config)
      if (entry.users.size > 0) continue
      registry.removeSingleMetric(entry.name)
      made.delete(entry.name)
      unused.set(entry.name, entry.metric)
    }
    asked.clear()
  }
  return { ...of(undefined), forPlugin: of, release }
}
