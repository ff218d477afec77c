import t from 'tap'
import { Metrics } from '../../src/metrics/metrics.ts'
import { clusterMetricsText, type AppliedConfig } from '../../src/workers/cluster-metrics.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

const GAUGE = 'portcullis_config_last_reload_successful'

t.test('portcullis_config_last_reload_successful: 1 at start, 0 while the file is broken, 1 after a success or the file put back', async t => {
  const a = await namedUpstream('a')
  const good = gatewayYaml({ a: [a.url] }, '  - { name: api, match: { path: /api }, upstream: a }')
  const broken = good.replace('upstream: a', 'upstream: nope')
  const cf = await configFile(good)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const admin = gw.adminUrl as string
  // metricValue says 0 for a series that is absent: check it is there.
  t.match(await (await fetch(`${admin}/metrics`)).text(), new RegExp(`^${GAUGE} 1$`, 'm'), '1 at start')

  await cf.write(broken)
  t.equal((await gw.reloader.reload('admin')).result, 'invalid')
  t.equal(await metricValue(admin, GAUGE), 0, 'an invalid file')
  await cf.write(good.replace('/api', '/next'))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  t.equal(await metricValue(admin, GAUGE), 1, 'a success')
  await cf.write(broken)
  t.equal((await gw.reloader.reload('file')).result, 'invalid')
  t.equal(await metricValue(admin, GAUGE), 0, 'an earlier success does not hide a later failure')
  await cf.write(good.replace('/api', '/next'))
  t.equal((await gw.reloader.reload('file')).result, 'unchanged')
  t.equal(await metricValue(admin, GAUGE), 1, 'the served file put back')
})

t.test('workers: the primary reloads; its 0 is the gateway\'s, whatever the workers\' own gauges say', async t => {
  const workers = [new Metrics({ defaultMetrics: false }), new Metrics({ defaultMetrics: false })]
  const pool = {
    pids: [1, 2],
    metrics: async () => await Promise.all(workers.map(async (m, i) => ({ pid: i + 1, metrics: await m.registry.getMetricsAsJSON() })))
  }
  const primary = new Metrics({ defaultMetrics: false })
  const applied: AppliedConfig = { hash: 'a', config: { routes: [], upstreams: {} } as unknown as AppliedConfig['config'] }
  const scrape = async () => {
    const text = await clusterMetricsText(primary, pool as unknown as WorkerPool, 'prometheus', applied)
    return new RegExp(`^${GAUGE} (\\S+)$`, 'm').exec(text)?.[1]
  }
  t.equal(await scrape(), '1', 'not one per process')
  primary.configReloaded('failed')
  t.equal(await scrape(), '0')
  primary.configReloaded('success')
  t.equal(await scrape(), '1')
})
