import t from 'tap'
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { parse } from 'yaml'
import { dashboardExpressions, portcullisDashboard } from '../../grafana/dashboards/portcullis.ts'
import { fill } from './helpers.ts'
import { configFile, waitFor } from '../reload/helpers.ts'
import { loadConfig } from '../../src/config/load.ts'
import { Metrics } from '../../src/metrics/metrics.ts'
import { startPortcullis } from '../../src/server/start.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { startPrometheus } from '../helpers/prometheus.ts'

const RULES = new URL('../../grafana/alerts/portcullis.rules.yaml', import.meta.url)
// Metrics that only plugins this test does not run publish (stores serve plugins; the cache runs on `cached`): their
// panels have data once those plugins run on a route.
const PLUGIN_METRICS = /portcullis_(auth_failures|ratelimit_requests|cache_corrupt_entries|cache_invalidation_failures|store_errors)_total|portcullis_store_(up|command_duration_seconds)/

interface QueryResult { status: string, error?: string, data?: { result: unknown[] } }

t.test('a real Prometheus scraping a gateway under traffic answers every dashboard and rule expression', async t => {
  const slow = await startUpstream((req, res) => { req.resume(); setTimeout(() => res.writeHead(200).end('slow'), req.url === '/slow' ? 300 : 0) })
  const dead = `http://127.0.0.1:${await deadPort()}`
  // `app` has a dead second target: requests to it are retried (connect-error), it gets ejected, its breaker opens.
  // `narrow` takes one request at a time, times it out at 100 ms (/slow takes 300): of three at once, one waits, one is refused busy.
  // `cached` answers `only-if-cached` with 504 (nothing stored fits): the client's doing, which the 5xx alert and panels subtract.
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  app:
    targets: [ { url: "${slow.url}" }, { url: "${dead}" } ]
    circuitBreaker: { minRequests: 1 }
  gone: { targets: [ { url: "${dead}" } ] }
  narrow:
    targets: [ { url: "${slow.url}" } ]
    connections: 1
    queue: { max: 1, timeout: 30s }
    timeouts: { response: 100ms }
    passive: false
routes:
  - { name: api, match: { path: /api/* }, upstream: app }
  - { name: broken, match: { path: /broken }, upstream: gone }
  - { name: narrow, match: { path: /slow }, upstream: narrow }
  - { name: cached, match: { path: /cached }, upstream: app, plugins: { cache: { requestCacheControl: honor } } }
`)
  const loaded = await loadConfig(cf.file, {})
  const gw = await startPortcullis(loaded, memoryLogger().log, new Metrics())
  await (await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })).body.dump()
  const admin = new URL(gw.adminUrl as string)
  const prom = await startPrometheus(`global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ["${RULES.pathname}"]
scrape_configs:
  - job_name: portcullis
    static_configs: [ { targets: ["${admin.host}"] } ]
`)
  t.teardown(async () => {
    await prom.close()
    await gw.close(); await slow.close(); await cf.remove()
  })
  const api = prom.api
  const query = async (expr: string): Promise<QueryResult> =>
    await (await request(`${api}/query?query=${encodeURIComponent(expr)}`)).body.json() as QueryResult

  // Traffic of every kind (2xx, 404, 502, slow, timed out, queued, busy) while Prometheus scrapes every second, for a few scrapes.
  let traffic = true
  const load = (async () => {
    while (traffic) {
      await Promise.all(['/api/users', '/api/slow', '/broken', '/nowhere', ...Array<string>(3).fill('/slow')]
        .map(async p => (await request(`${gw.url}${p}`)).body.dump()))
      await (await request(`${gw.url}/cached`, { headers: { 'cache-control': 'only-if-cached' } })).body.dump()
    }
  })()
  const scrapes = async () => {
    try {
      const r = await query('count_over_time(up{job="portcullis"}[1m])')
      return Number((r.data?.result[0] as { value?: [number, string] } | undefined)?.value?.[1] ?? 0)
    } catch { return 0 }
  }
  t.ok(await waitFor(async () => await scrapes() >= 6 ? true : undefined, 60_000), 'six scrapes of traffic')
  traffic = false
  await load

  // What the alert subtracts is what the requests counter counted: the cache's 504s, under the same route label.
  const value = async (expr: string) => Number((((await query(expr)).data?.result[0]) as { value?: [number, string] } | undefined)?.value?.[1] ?? NaN)
  const counted = async () => {
    const [answered, unsatisfiable] = [await value('sum(portcullis_http_requests_total{route="cached", status="504"})'),
      await value('sum(portcullis_cache_requests_total{route="cached", result="unsatisfiable"})')]
    return answered > 0 && answered === unsatisfiable ? true : undefined
  }
  t.ok(await waitFor(counted, 30_000), 'only-if-cached 504s are counted as unsatisfiable, under the route of the 504 answers')

  for (const expr of dashboardExpressions(portcullisDashboard())) {
    // `$__interval` within the six scrapes awaited: `offset $__interval` needs a sample that old.
    const promql = fill(expr, '15s', '5s')
    const r = await query(promql)
    t.equal(r.status, 'success', `parses: ${promql}${r.error === undefined ? '' : ` (${r.error})`}`)
    if (!PLUGIN_METRICS.test(promql)) t.ok((r.data?.result.length ?? 0) > 0, `returns data: ${promql}`)
  }

  const rules = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ expr: string, record?: string }> }> }
  for (const rule of rules.groups.flatMap(g => g.rules)) {
    const r = await query(rule.expr)
    t.equal(r.status, 'success', `rule parses: ${rule.record ?? rule.expr.split('\n')[0]}`)
    if (rule.record !== undefined) t.ok((r.data?.result.length ?? 0) > 0, `recording rule has data: ${rule.record}`)
  }
})
