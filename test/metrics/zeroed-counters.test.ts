import t from 'tap'
import type { SrvRecord } from 'node:dns'
import { request } from 'undici'
import { configFile, gatewayYaml, startFromFile } from '../reload/helpers.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { Metrics } from '../../src/metrics/metrics.ts'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'

// Counters of rare events exist at 0 from the route's or target's setup: a series created at its
// first event starts at 1, and rate()/increase() (the alerts) never see that first event.
const RARE = /^portcullis_(cache_corrupt_entries_total|cache_invalidation_failures_total|upstream_ejections_total|ratelimit_requests_total)\{/

/** The samples of the rare-event counters on `adminUrl`'s /metrics, as `name{labels} value` lines. */
async function rare (adminUrl: string): Promise<string[]> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text()
  return text.split('\n').filter(l => RARE.test(l)).sort()
}

t.test('a gateway\'s /metrics shows the rare-event counters at 0 from the start; a reload keeps only those of its routes and targets', async t => {
  const redis = await RedisProcess.start()
  const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
  const dead = `http://127.0.0.1:${await deadPort()}`
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove(); await redis.stop() })
  writeUserPlugin(cf.dir, 'boom', 100, '(() => { throw new Error(\'boom: setup fails\') })()')
  const stores = `loadPlugins: [ ./boom.ts ]
stores:
  shared: { type: redis, url: "${redis.url}" }`
  const yaml = (suffix: string, targets: string[], more = '') => gatewayYaml({ u: targets }, `  - { name: cached${suffix}, match: { path: /c }, upstream: u, plugins: { cache: {} } }
  - { name: shared${suffix}, match: { path: /s }, upstream: u, plugins: { cache: { store: shared } } }
  - { name: limited${suffix}, match: { path: /l }, upstream: u, plugins: { rate-limit: { limits: [ { name: w, requests: 10, window: 1m } ] } } }
${more}`, stores)
  await cf.write(yaml('', [up.url, dead]))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())

  const expected = (suffix: string, targets: string[]) => [
    `portcullis_cache_corrupt_entries_total{route="cached${suffix}"} 0`,
    `portcullis_cache_corrupt_entries_total{route="shared${suffix}"} 0`,
    `portcullis_cache_invalidation_failures_total{route="cached${suffix}"} 0`,
    `portcullis_cache_invalidation_failures_total{route="shared${suffix}"} 0`,
    ...['allowed', 'limited', 'store_error'].map(result => `portcullis_ratelimit_requests_total{route="limited${suffix}",result="${result}"} 0`),
    ...targets.map(target => `portcullis_upstream_ejections_total{upstream="u",target="${target}"} 0`)
  ].sort()
  t.same(await rare(gw.adminUrl as string), expected('', [up.url, dead]), 'each at 0 before any request')

  // Routes renamed, a target removed: their series go, the new ones start at 0; as many as before each time.
  for (const suffix of ['-a', '-b']) {
    await cf.write(yaml(suffix, [up.url]))
    t.equal((await gw.reloader.reload('admin')).result, 'success')
    t.same(await rare(gw.adminUrl as string), expected(suffix, [up.url]), `after the reload to ${suffix}`)
  }

  // A build that fails after setting up new routes: nothing of theirs stays.
  await cf.write(yaml('-c', [up.url, dead], '  - { name: boom, match: { path: /b }, upstream: u, plugins: { boom: {} } }'))
  t.match(await gw.reloader.reload('admin'), { result: 'failed', error: /boom: setup fails/ })
  t.same(await rare(gw.adminUrl as string), expected('-b', [up.url]), 'only the series of the config in service')
})

t.test('a target DNS discovery adds has its ejection series at 0; one added to an upstream no longer watched has none', async t => {
  const record = (port: number): SrvRecord => ({ name: 'localhost', port, priority: 10, weight: 1 })
  let records = [record(1001)]
  const resolver = { lookup: async () => [{ address: '127.0.0.1', family: 4 }], resolveSrv: async () => records }
  const { log } = memoryLogger()
  const metrics = new Metrics({ defaultMetrics: false })
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 50 }] }, upstreamEvents(log, metrics))
  const unwatch = metrics.watchUpstreams(new Map([['svc', upstream]]))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const series = async () => (await metrics.upstreamEjections.get()).values.map(v => `${v.labels.target} ${v.value}`).sort()
  t.same(await series(), ['http://127.0.0.1:1001 0'])

  records = [record(1001), record(1002)]
  t.ok(await until(() => upstream.targets.length === 2), 'a second target')
  t.same(await series(), ['http://127.0.0.1:1001 0', 'http://127.0.0.1:1002 0'])

  // A reload retired this runtime (its discovery may still answer): the config in service owns the series.
  unwatch()
  records = [record(1001), record(1002), record(1003)]
  t.ok(await until(() => upstream.targets.length === 3), 'a third target')
  t.same(await series(), ['http://127.0.0.1:1001 0', 'http://127.0.0.1:1002 0'])
})
