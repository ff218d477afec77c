import t from 'tap'
import { join } from 'node:path'
import { Counter, Histogram, Registry } from 'prom-client'
import { request } from 'undici'
import { Metrics } from '../../src/metrics/metrics.ts'
import { clusterMetricsText, type AppliedConfig } from '../../src/workers/cluster-metrics.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

// The counts of a worker that crashed stayed in /metrics though no config used the metric any more,
// and mixed with the samples of a metric a later config made under that name (other labels, type, buckets).

const PLUGIN = `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: 'wkm', priority: 500, schema: Type.Object({}), setup (config, ctx) {
  const hits = ctx.metrics.counter({ name: 'portcullis_wkm_hits_total', help: 'Hits.', labelNames: ['route'] })
  return { onRequest (req) { hits.inc({ route: req.route.name }) } }
} })
`
const HITS = 'portcullis_wkm_hits_total{route="a"}'

t.test('workers: a crashed worker\'s plugin metric stays while a config uses it, and leaves /metrics with it', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const dir = t.testdir({ 'wkm.ts': PLUGIN })
  const routes = (plugins: string) => `  - { name: a, match: { path: /a }, upstream: u, plugins: { ${plugins} } }`
  const { cli, workers, url, admin, reload } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, routes('wkm: {}'), { loadPlugins: [join(dir, 'wkm.ts')] })
  const metricsText = async () => await (await request(`${admin}/metrics`)).body.text()
  // A worker just started may miss a scrape (counted for nothing meanwhile): asked until the value is the one wanted.
  const settles = async (want: number) => await waitFor(async () => await metricValue(admin, HITS) === want ? want : undefined, 10_000) ?? await metricValue(admin, HITS)

  t.equal((await fresh(`${url}/a`, 6)).filter(r => r.startsWith('200 ')).length, 6)
  for (const pid of workers) t.ok(await cli.waitForLine(l => l.msg === 'request' && l.route === 'a' && l.pid === pid, 10_000), `worker ${pid} served some`)
  t.equal(await settles(6), 6)

  // Both workers crash: those replacing them have the metric, with no series yet; the counts stay.
  for (const pid of workers) {
    process.kill(pid, 'SIGKILL')
    const crashed = await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === pid)
    t.ok(await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === crashed?.worker && !workers.includes(l.workerPid as number), 60_000), 'replaced')
    t.equal(await settles(6), 6, 'the counts of the workers gone stay while the config uses the metric')
  }

  t.match(await reload(routes('')), { result: 'success' })
  t.ok(await waitFor(async () => (await metricsText()).includes('portcullis_wkm_hits_total') ? undefined : true, 10_000),
    'no config running uses it: the departed counts leave /metrics too')
})

/** A worker's answer, with the metrics `make` registers. */
async function answer (pid: number, make: (registry: Registry) => void) {
  const registry = new Registry()
  make(registry)
  return { pid, metrics: await registry.getMetricsAsJSON() }
}
const counter = (labelNames: string[], labels?: Record<string, string>) => (registry: Registry) => {
  const c = new Counter({ name: 'x_hits_total', help: 'h', labelNames, registers: [registry] })
  if (labels !== undefined) c.inc(labels, 3)
}
const histogram = (name: string, buckets: number[], observed: boolean) => (registry: Registry) => {
  const h = new Histogram({ name, help: 'h', labelNames: ['route'], buckets, registers: [registry] })
  if (observed) h.observe({ route: 'a' }, 0.3)
}

t.test('workers: the departed of a metric made anew with another type, labels or buckets leave /metrics', async t => {
  const pool = { pids: [1, 2], answers: [] as unknown[], metrics: async () => pool.answers }
  const applied = { hash: 'a', config: { routes: [{ name: 'a' }], upstreams: {} } } as unknown as AppliedConfig
  const scrape = async (formats: Array<'prometheus' | 'openmetrics'> = ['prometheus', 'openmetrics']) =>
    (await Promise.all(formats.map(f => clusterMetricsText(new Metrics({ defaultMetrics: false }), pool as unknown as WorkerPool, f, applied)))).join('\n')
  // Worker `pid` exits after counting 3 on route a; worker 9 answers `live`.
  const departs = async (pid: number, make: (registry: Registry) => void, live: (registry: Registry) => void) => {
    pool.pids = [pid, 9]
    pool.answers = [await answer(pid, make), await answer(9, live)]
    await scrape(['prometheus'])
    pool.pids = [9, pid + 100]
    pool.answers = [await answer(9, live)]
  }

  await departs(1, counter(['route'], { route: 'a' }), counter(['route']))
  t.match(await scrape(), /^x_hits_total\{route="a"\} 3$/m, 'the live worker has it, no series yet: the departed counts stay')
  pool.answers = [await answer(9, counter(['kind'], { kind: 'k' }))]
  let text = await scrape()
  t.notMatch(text, 'route="a"', 'made anew with other labels: the departed go')
  t.match(text, /^x_hits_total\{kind="k"\} 3$/m)

  await departs(2, counter(['route'], { route: 'a' }), counter(['route']))
  pool.answers = [await answer(9, histogram('x_hits_total', [1], false))]
  text = await scrape()
  t.notMatch(text, /^x_hits_total\{/m, 'made anew as a histogram (no series yet): no bare counter sample in it')

  await departs(3, histogram('x_size_bytes', [0.1, 1], true), histogram('x_size_bytes', [0.1, 1], false))
  t.match(await scrape(), 'x_size_bytes_bucket{le="0.1",route="a"} 0')
  pool.answers = [await answer(9, histogram('x_size_bytes', [0.5, 2], true))]
  text = await scrape()
  t.notMatch(text, 'le="0.1"', 'made anew with other buckets: the departed go')
  t.match(text, /^x_size_bytes_count\{route="a"\} 1$/m)

  // Worker 9 has the new metric with no series yet; another with series of it answered, then exited
  // before the scrape ended: the departed had the old metric, the older go.
  await departs(4, counter(['route'], { route: 'a' }), counter(['route']))
  pool.answers = [await answer(5, counter(['kind'], { kind: 'k' })), await answer(9, counter(['kind']))]
  text = await scrape(['prometheus'])
  t.notMatch(text, 'route="a"')
  t.match(text, /^x_hits_total\{kind="k"\} 3$/m)
  // One live worker has the new metric's series, another only an old answer (too slow since): the departed go.
  await departs(6, counter(['route'], { route: 'a' }), counter(['route']))
  pool.pids = [9, 7]
  pool.answers = [await answer(7, counter(['kind'], { kind: 'k' }))]
  text = await scrape()
  t.notMatch(text, 'route="a"')
  t.match(text, /^x_hits_total\{kind="k"\} 3$/m)

  // A series may leave a label out (prom-client allows it): `{route}` beside `{route, consumer}` is
  // the same metric, and the departed counts of `{route}` stay (they were dropped: the counter went down).
  await departs(10, counter(['route', 'consumer'], { route: 'a' }), counter(['route', 'consumer'], { route: 'a' }))
  t.match(await scrape(['prometheus']), /^x_hits_total\{route="a"\} 6$/m, 'the departed 3 and the live 3')
  pool.answers = [await answer(9, registry => { counter(['route', 'consumer'], { route: 'a' })(registry); (registry.getSingleMetric('x_hits_total') as Counter).inc({ route: 'a', consumer: 'alice' }) })]
  text = await scrape()
  t.match(text, /^x_hits_total\{route="a"\} 6$/m, 'a live series with one label more: the departed counts stay')
  t.match(text, /^x_hits_total\{route="a",consumer="alice"\} 1$/m)
})
