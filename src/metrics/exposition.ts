import { Registry, type Metric, type MetricObjectWithValues, type MetricValue, type OpenMetricsContentType } from 'prom-client'

export type ExpositionFormat = 'prometheus' | 'openmetrics'

export const CONTENT_TYPE: Readonly<Record<ExpositionFormat, string>> = {
  prometheus: Registry.PROMETHEUS_CONTENT_TYPE,
  openmetrics: Registry.OPENMETRICS_CONTENT_TYPE
}

/**
 * OpenMetrics when the scraper's Accept names application/openmetrics-text at least as high as
 * text/plain or a wildcard (Prometheus sends it first, when exemplars or native features are on);
 * the Prometheus text format otherwise.
 */
export function expositionFormat (accept: string | undefined): ExpositionFormat {
  if (accept === undefined) return 'prometheus'
  let openMetrics = 0
  let text = 0
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';')
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    const weight = q === undefined ? 1 : Number(q.slice(2)) || 0
    const t = type.trim().toLowerCase()
    if (t === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, weight)
    else if (t === 'text/plain' || t === 'text/*' || t === '*/*') text = Math.max(text, weight)
  }
  return openMetrics > 0 && openMetrics >= text ? 'openmetrics' : 'prometheus'
}

type MetricJson = MetricObjectWithValues<MetricValue<string>>

// Families already warned of as duplicates: each once, and no more than 64 (after those, none).
const warned = new Set<string>()

/**
 * Metrics (as getMetricsAsJSON gives them: one process's, or the workers' merged) in the
 * OpenMetrics text format, with exemplars. Rendered by prom-client from snapshots in a registry of
 * their own: its OpenMetrics rendering renames the counters it is given (strips `_total`), which
 * must not happen to the live ones, still served as Prometheus text to other scrapers. A family
 * named twice (plugin metrics refuse such names: see pluginMetrics) is shown once, the first: the
 * registry would throw, failing the whole scrape.
 */
export async function openMetricsText (metrics: readonly MetricJson[]): Promise<string> {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  for (const m of metrics) {
    // prom-client's types say MetricType is a numeric enum; at run time it is the string.
    const snapshot = { ...m, name: (m.type as unknown) === 'counter' ? m.name.replace(/_total$/, '') : m.name }
    if (registry.getSingleMetric(snapshot.name) !== undefined) {
      if (!warned.has(snapshot.name) && warned.size < 64) {
        warned.add(snapshot.name)
        process.emitWarning(`metric ${m.name} left out of OpenMetrics scrapes: another metric has its family name, ${snapshot.name}`, { code: 'PORTCULLIS_METRIC_FAMILY' })
      }
      continue
    }
    registry.registerMetric({ name: snapshot.name, type: m.type, get: () => snapshot } as unknown as Metric)
  }
  return registry.metrics()
}
