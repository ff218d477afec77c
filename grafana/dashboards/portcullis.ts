import { DashboardBuilder, DatasourceVariableBuilder, MappingType, QueryVariableBuilder, RowBuilder, VariableRefresh, VariableSort, type Dashboard } from '@grafana/grafana-foundation-sdk/dashboard'
import { GraphDrawStyle } from '@grafana/grafana-foundation-sdk/common'
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus'
import { PanelBuilder as TimeSeries } from '@grafana/grafana-foundation-sdk/timeseries'
import { PanelBuilder as Stat } from '@grafana/grafana-foundation-sdk/stat'

/** The dashboard the compose stack provisions: `npm run dashboards` writes portcullis.json from it. */

const DS = { type: 'prometheus', uid: '${datasource}' }
// Every query is scoped by the template variables; `$__rate_interval` adapts to the scrape interval.
const I = 'instance=~"$instance"'
const R = `${I}, route=~"$route"`
const U = `${I}, upstream=~"$upstream"`
const RATE = '[$__rate_interval]'
// As the 5xx alert (PortcullisHigh5xxRatio): 501 and 505 are the client's doing (CONNECT, an unknown HTTP version or transfer coding).
const FIVE_XX = 'status=~"5..", status!~"501|505"'
// 5xx per route, as the alert: less the cache's 504s to `only-if-cached` (also the client's doing); `or` keeps routes without a cache.
const fiveXx = `sum by (route) (rate(portcullis_http_requests_total{${R}, ${FIVE_XX}}${RATE}))`
const FIVE_XX_RATE = `(${fiveXx} - sum by (route) (rate(portcullis_cache_requests_total{${R}, result="unsatisfiable"}${RATE})) or ${fiveXx})`
// Cache results answered with the stored response (docs/plugins/cache.md#metrics).
const FROM_CACHE = 'hit|stale|collapsed|revalidated'

/** `exemplars`: Grafana also fetches the exemplars of the expression's series and draws them as points. */
type Query = readonly [expr: string, legend: string, exemplars?: boolean]

const graph = (title: string, unit: string, queries: readonly Query[], description: string) => {
  const panel = new TimeSeries().title(title).description(description).unit(unit).datasource(DS).height(8).span(12)
  for (const [expr, legend, exemplars] of queries) {
    const target = new DataqueryBuilder().expr(expr).legendFormat(legend)
    panel.withTarget(exemplars === true ? target.exemplar(true) : target)
  }
  return panel
}

const stat = (title: string, unit: string, expr: string, legend: string, description: string) =>
  new Stat().title(title).description(description).unit(unit).datasource(DS).height(4).span(6)
    .withTarget(new DataqueryBuilder().expr(expr).legendFormat(legend).instant())

/**
 * Bars of how many times a counter went up in each bar's `$__interval` (at least 1m), for rare events. Not `increase()`:
 * it extrapolates (one event reads 1.33 with 15s scrapes), and over `$__rate_interval` it spreads one event over several points.
 * A counter reset (restart) reads 0, not negative.
 */
const counts = (title: string, queries: readonly Query[], description: string) => graph(title, 'short', queries, description)
  .interval('1m').drawStyle(GraphDrawStyle.Bars).fillOpacity(60)
const perInterval = (by: string, selector: string) => `sum by (${by}) (clamp_min(${selector} - ${selector} offset $__interval, 0))`

const quantile = (q: number, metric: string, by: string, scope: string) =>
  `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}_bucket{${scope}}${RATE})))`

/** `part` over `whole` (rates), 0 rather than no data when `part` has no series (no 5xx yet, say), per `by` when given. */
const share = (part: string, whole: string, by?: string) => by === undefined
  ? `(sum(${part}) or vector(0)) / sum(${whole})`
  : `(sum by (${by}) (${part}) or 0 * sum by (${by}) (${whole})) / sum by (${by}) (${whole})`

const variable = (name: string, label: string, query: string) => new QueryVariableBuilder(name).label(label).query(query).datasource(DS)
  .multi(true).includeAll(true).allValue('.*').refresh(VariableRefresh.OnTimeRangeChanged).sort(VariableSort.AlphabeticalAsc)

export function portcullisDashboard (): Dashboard {
  return new DashboardBuilder('Portcullis')
    .uid('portcullis')
    .tags(['portcullis', 'api-gateway'])
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    // portcullis_config_info exists from the first scrape; the request series only once requests came.
    .withVariable(variable('instance', 'Instance', 'label_values(portcullis_config_info, instance)'))
    .withVariable(variable('route', 'Route', `label_values(portcullis_http_requests_total{${I}}, route)`))
    .withVariable(variable('upstream', 'Upstream', `label_values(portcullis_upstream_target_healthy{${I}}, upstream)`))

    .withRow(new RowBuilder('Traffic and errors'))
    .withPanel(stat('Requests per second', 'reqps', `sum(rate(portcullis_http_requests_total{${R}}${RATE}))`, 'all routes',
      'Every request the gateway answered, plugin answers (401, 429, cache hits) included.'))
    .withPanel(stat('5xx ratio', 'percentunit', share(FIVE_XX_RATE, `rate(portcullis_http_requests_total{${R}}${RATE})`), '5xx',
      'Share of answers with a 5xx status: upstream failures (502, 503, 504) and gateway errors (500). 501, 505 and the cache\'s 504 to only-if-cached (the client\'s doing) are left out, as in the 5xx alert.'))
    .withPanel(stat('In flight', 'short', `sum(portcullis_http_requests_in_flight{${I}})`, 'in flight', 'Requests being answered right now.'))
    .withPanel(stat('Active config', 'short', `count by (hash) (portcullis_config_info{${I}})`, '{{hash}}', 'Instances per active config hash: more than one hash means a reload did not reach every instance.'))
    .withPanel(graph('Requests by route and status class', 'reqps', [
      // The class in a label of its own: overwriting `status` made two statuses of a class (502, 504) one series twice, an error.
      [`sum by (route, class) (label_replace(rate(portcullis_http_requests_total{${R}}${RATE}), "class", "\${1}xx", "status", "(.).."))`, '{{route}} {{class}}']
    ], 'Request rate per route, by status class.'))
    .withPanel(graph('Error ratio by route', 'percentunit', [
      [share(FIVE_XX_RATE, `rate(portcullis_http_requests_total{${R}}${RATE})`, 'route'), '{{route}} 5xx'],
      [share(`rate(portcullis_http_requests_total{${R}, status=~"4.."}${RATE})`, `rate(portcullis_http_requests_total{${R}}${RATE})`, 'route'), '{{route}} 4xx']
    ], 'Share of 5xx (but 501, 505 and the cache\'s 504 to only-if-cached, as in the 5xx alert) and 4xx answers per route.'))
    .withPanel(graph('Timeouts by kind', 'ops', [
      [`sum by (kind) (rate(portcullis_timeouts_total{${I}}${RATE}))`, '{{kind}}']
    ], 'Per second: slow clients cut off (client_*), the route\'s request timeout (request), waits for an upstream connection that ran out (queue), and upstream tries that timed out (upstream_*; a try retried counts too).'))

    .withRow(new RowBuilder('Latency'))
    .withPanel(graph('Request latency by route (p50, p95, p99)', 's', [
      [quantile(0.5, 'portcullis_http_request_duration_seconds', 'route', R), '{{route}} p50'],
      [quantile(0.95, 'portcullis_http_request_duration_seconds', 'route', R), '{{route}} p95'],
      // Exemplars on one query only: they are the buckets' (each query of the panel would draw them again).
      // The only histogram that has them (src/metrics/request-metrics.ts).
      [quantile(0.99, 'portcullis_http_request_duration_seconds', 'route', R), '{{route}} p99', true]
    ], 'The whole request as the client sees it. The points are exemplars: a recent request of a latency bucket, at its duration; hover one for its trace_id (the access log\'s traceId).'))
    .withPanel(graph('Gateway overhead by route (p50, p99)', 's', [
      [quantile(0.5, 'portcullis_gateway_overhead_seconds', 'route', R), '{{route}} p50'],
      [quantile(0.99, 'portcullis_gateway_overhead_seconds', 'route', R), '{{route}} p99']
    ], 'Time spent in the gateway itself: the whole request minus the time waiting for the upstream.'))

    .withRow(new RowBuilder('Upstreams'))
    .withPanel(graph('Upstream response time (p50, p99)', 's', [
      [quantile(0.5, 'portcullis_upstream_response_duration_seconds', 'upstream', U), '{{upstream}} p50'],
      [quantile(0.99, 'portcullis_upstream_response_duration_seconds', 'upstream', U), '{{upstream}} p99']
    ], 'From the request written to the upstream to its response headers.'))
    .withPanel(graph('Healthy targets', 'short', [
      [`sum by (upstream) (min by (upstream, target) (portcullis_upstream_target_healthy{${U}}))`, '{{upstream}} healthy'],
      [`count by (upstream) (count by (upstream, target) (portcullis_upstream_target_healthy{${U}}))`, '{{upstream}} targets']
    ], 'Targets taking traffic (active health, passive ejection and breaker combined) on every instance, against all targets; each target counts once, however many instances. An upstream\'s last available target is never ejected: without a healthCheck (or circuitBreaker), a lone target refusing every connection stays healthy here (1 of 1) and raises no target alert, only the 5xx one (its 502s). Give such upstreams a healthCheck.'))
    .withPanel(graph('Retries and ejections', 'ops', [
      [`sum by (upstream, reason) (rate(portcullis_upstream_retries_total{${U}}${RATE}))`, 'retry {{upstream}} {{reason}}'],
      [`sum by (upstream, target) (rate(portcullis_upstream_ejections_total{${U}}${RATE}))`, 'ejected {{target}}']
    ], 'Per second: requests retried on another target, and targets ejected after consecutive failures.'))
    .withPanel(graph('Circuit breakers', 'short', [
      [`max by (upstream, target) (portcullis_upstream_breaker_state{${U}})`, '{{target}}']
    ], '0 closed, 1 half-open, 2 open.'))
    .withPanel(graph('Refused busy (503 upstream_busy, upload_slots_busy)', 'reqps', [
      [`sum by (upstream, reason) (rate(portcullis_upstream_busy_total{${U}}${RATE}))`, '{{upstream}} {{reason}}']
    ], 'Requests refused because every connection of the target was busy: its queue full (queue-full) or the wait too long (queue-timeout); or, over HTTP/2, because the client\'s other uploads on that connection held every upload slot (upload-slots).'))
    .withPanel(graph('Upstream queue wait (p95)', 's', [
      [quantile(0.95, 'portcullis_upstream_queue_wait_seconds', 'upstream', U), '{{upstream}} p95']
    ], 'How long requests that had to wait for a free connection waited (requests sent at once are not observed).'))

    .withRow(new RowBuilder('Plugins and stores'))
    .withPanel(graph('Auth failures by reason', 'reqps', [
      [`sum by (route, reason) (rate(portcullis_auth_failures_total{${R}}${RATE}))`, '{{route}} {{reason}}']
    ], 'Requests refused by an authentication plugin.'))
    .withPanel(graph('Rate-limited share', 'percentunit', [
      [share(`rate(portcullis_ratelimit_requests_total{${R}, result="limited"}${RATE})`, `rate(portcullis_ratelimit_requests_total{${R}}${RATE})`, 'route'), '{{route}}']
    ], 'Share of requests answered 429 on routes with a rate limit.'))
    .withPanel(graph('Cache hit ratio', 'percentunit', [
      [share(`rate(portcullis_cache_requests_total{${R}, result=~"${FROM_CACHE}"}${RATE})`, `rate(portcullis_cache_requests_total{${R}}${RATE})`, 'route'), '{{route}}']
    ], 'Share of cache lookups answered with the stored response: hit, stale, collapsed (onto another request\'s fetch) and revalidated (the upstream\'s 304 confirmed the entry: no body fetched). A background revalidation (stale-while-revalidate) counts one revalidated more, beside its request\'s stale.'))
    .withPanel(graph('Stores up', 'short', [
      [`min by (store) (portcullis_store_up{${I}})`, '{{store}}']
    ], '1 when every instance reaches the store.'))
    .withPanel(graph('Store errors', 'ops', [
      [`sum by (store) (rate(portcullis_store_errors_total{${I}}${RATE}))`, '{{store}}']
    ], 'Per second: store commands that failed (error, command timeout, store unreachable).'))
    .withPanel(graph('Store command time (p95)', 's', [
      [quantile(0.95, 'portcullis_store_command_duration_seconds', 'store', I), '{{store}} p95']
    ], 'Time of one store command (Redis stores only: a memory store\'s calls are not timed).'))
    .withPanel(counts('Cache corrupt entries and invalidation failures', [
      [perInterval('route', `portcullis_cache_corrupt_entries_total{${R}}`), '{{route}} corrupt'],
      [perInterval('route', `portcullis_cache_invalidation_failures_total{${R}}`), '{{route}} invalidation failed']
    ], 'Per bar: stored values the cache could not read (dropped, the request sent upstream as a miss), and invalidations by unsafe requests the store failed (the entries served until a retry goes through or they expire).'))

    .withRow(new RowBuilder('Config and process'))
    .withPanel(stat('Last reload', 'short', `min by (instance) (portcullis_config_last_reload_successful{${I}})`, '{{instance}}',
      'Per instance: rejected while its last reload was (invalid or failed: the previous config serving), ok otherwise.')
      .height(8).mappings([{ type: MappingType.ValueToText, options: { 0: { text: 'rejected', color: 'red' }, 1: { text: 'ok', color: 'green' } } }]))
    .withPanel(counts('Config reloads', [
      [perInterval('result', `portcullis_config_reloads_total{${I}}`), '{{result}}']
    ], 'Reload attempts per bar, by result: success, invalid, failed, unchanged.').span(18))
    .withPanel(graph('CPU and event-loop lag', 's', [
      [`rate(portcullis_process_cpu_seconds_total{${I}}${RATE})`, 'cpu {{instance}}'],
      [`portcullis_nodejs_eventloop_lag_p99_seconds{${I}}`, 'event-loop lag p99 {{instance}}']
    ], 'CPU seconds per second, and the event loop\'s p99 delay.'))
    .withPanel(graph('Memory', 'bytes', [
      [`portcullis_process_resident_memory_bytes{${I}}`, 'rss {{instance}}'],
      [`portcullis_nodejs_heap_size_used_bytes{${I}}`, 'heap used {{instance}}']
    ], 'Resident memory and the V8 heap in use.'))
    .build()
}

/** Every PromQL expression of the dashboard (panels and template variables), for tests. */
export function dashboardExpressions (d: Dashboard): string[] {
  const panels = (d.panels ?? []) as Array<{ targets?: Array<{ expr?: string }> }>
  const exprs = panels.flatMap(p => (p.targets ?? []).map(t => t.expr ?? ''))
  const vars = (d.templating?.list ?? []).flatMap(v => typeof v.query === 'string' && v.query.startsWith('label_values') ? [v.query] : [])
  return [...exprs, ...vars]
}
