import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { DASHBOARD_JSON, dashboardText } from '../../grafana/emit.ts'
import { dashboardExpressions, portcullisDashboard } from '../../grafana/dashboards/portcullis.ts'
import { panelExpressions } from './helpers.ts'

const run = promisify(execFile)
const ALERTS = fileURLToPath(new URL('../../grafana/alerts/', import.meta.url))

t.test('grafana/dashboards/portcullis.json is what the TypeScript definition emits (npm run dashboards)', async t => {
  t.equal(readFileSync(DASHBOARD_JSON, 'utf8'), dashboardText())
})

t.test('the dashboard has instance, route and upstream variables and the rows operators look for', async t => {
  const d = portcullisDashboard()
  t.same(d.templating?.list?.map(v => v.name), ['datasource', 'instance', 'route', 'upstream'])
  const rows = (d.panels ?? []).filter(p => p.type === 'row').map(p => p.title)
  t.same(rows, ['Traffic and errors', 'Latency', 'Upstreams', 'Plugins and stores', 'Config and process'])
  const exprs = dashboardExpressions(d).join('\n')
  for (const metric of ['portcullis_http_requests_total', 'portcullis_http_request_duration_seconds_bucket', 'portcullis_gateway_overhead_seconds_bucket',
    'portcullis_upstream_response_duration_seconds_bucket', 'portcullis_upstream_target_healthy', 'portcullis_upstream_retries_total',
    'portcullis_upstream_ejections_total', 'portcullis_upstream_breaker_state', 'portcullis_config_reloads_total', 'portcullis_config_last_reload_successful', 'portcullis_config_info',
    'portcullis_store_up', 'portcullis_auth_failures_total', 'portcullis_ratelimit_requests_total', 'portcullis_cache_requests_total',
    'portcullis_nodejs_eventloop_lag_p99_seconds', 'portcullis_process_resident_memory_bytes', 'portcullis_timeouts_total', 'portcullis_upstream_busy_total',
    'portcullis_upstream_queue_wait_seconds_bucket', 'portcullis_store_errors_total', 'portcullis_store_command_duration_seconds_bucket',
    'portcullis_cache_corrupt_entries_total', 'portcullis_cache_invalidation_failures_total']) {
    t.ok(exprs.includes(metric), `graphs ${metric}`)
  }
})

t.test('reloads are bars of 1m at least, the 0/1 last-reload gauge on a panel of its own (not on the count\'s axis)', async t => {
  const panels = (portcullisDashboard().panels ?? []) as Array<{ title?: string, interval?: string, fieldConfig?: { defaults?: { custom?: { drawStyle?: string } } } }>
  const reloads = panels.find(p => p.title === 'Config reloads')
  t.equal(reloads?.interval, '1m')
  t.equal(reloads?.fieldConfig?.defaults?.custom?.drawStyle, 'bars')
  t.same(panelExpressions(portcullisDashboard(), 'Config reloads').filter(e => e.includes('last_reload_successful')), [])
  t.match(panelExpressions(portcullisDashboard(), 'Last reload'), [/^min by \(instance\) \(portcullis_config_last_reload_successful/])
})

t.test('the dashboard counts 5xx answers as the 5xx alert does (501, 505 and only-if-cached 504s, the client\'s doing, left out)', async t => {
  const rules = parse(readFileSync(new URL('portcullis.rules.yaml', `file://${ALERTS}`), 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string, expr: string }> }> }
  const alert = rules.groups.flatMap(g => g.rules).find(r => r.alert === 'PortcullisHigh5xxRatio')
  const matcher = /status=~"5\.\.", status!~"[^"]+"/.exec(alert?.expr ?? '')?.[0]
  t.ok(matcher, `the alert's matcher: ${String(matcher)}`)
  const unsatisfiable = 'portcullis_cache_requests_total{result="unsatisfiable"}'
  t.ok(alert?.expr.includes(`- sum by (route) (rate(${unsatisfiable}[5m]))`), 'the alert subtracts the cache\'s 504s to only-if-cached per route')
  const fives = dashboardExpressions(portcullisDashboard()).filter(e => e.includes('status=~"5.."'))
  t.ok(fives.length >= 2, 'the 5xx ratio and error ratio panels')
  for (const expr of fives) {
    t.ok(expr.includes(matcher as string), expr)
    t.match(expr, /- sum by \(route\) \(rate\(portcullis_cache_requests_total\{[^}]*result="unsatisfiable"\}/, 'subtracts only-if-cached 504s per route')
  }
})

t.test('alert rules pass promtool check rules and their unit tests (promtool test rules)', async t => {
  const check = await run('promtool', ['check', 'rules', 'portcullis.rules.yaml'], { cwd: ALERTS })
  t.match(check.stdout, /SUCCESS: 21 rules found/)
  const tests = await run('promtool', ['test', 'rules', 'portcullis.test.yaml'], { cwd: ALERTS })
  t.match(tests.stdout, /SUCCESS/)
})
