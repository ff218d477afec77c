import t from 'tap'
import { Counter, Gauge, Registry } from 'prom-client'
import { request } from 'undici'
import { Metrics } from '../../src/metrics/metrics.ts'
import { UNMATCHED_ROUTE } from '../../src/metrics/request-metrics.ts'
import { clusterMetricsText } from '../../src/workers/cluster-metrics.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { fresh, startCluster } from './helpers.ts'

const PLAIN = 'portcullis_http_requests_total{route="plain",method="GET",status="200"}'
const PLAIN_COUNT = 'portcullis_http_request_duration_seconds_count{route="plain"}'

const purgeAll = async (admin: string) => {
  const res = await request(`${admin}/plugins/cache/purge`, { method: 'POST', body: '{"all":true}', headers: { 'content-type': 'application/json' } })
  return { status: res.statusCode, body: await res.body.json() as { error?: string, workers: Array<{ pid: number }>, missing?: number[] } }
}

t.test('workers: summed counters never go down when a worker is slow or restarts; info gauges are not summed; a purge says which workers did not answer', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, workers, url, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, `  - { name: plain, match: { path: /plain }, upstream: u }
  - { name: cached, match: { path: /cached }, upstream: u, plugins: { cache: {} } }`, { env: { PORTCULLIS_WORKER_QUERY_TIMEOUT_MS: '500' } })
  const [slow, other] = workers as [number, number]
  // A stopped worker must not outlive the test (the primary's SIGTERM could not reach it).
  t.teardown(() => { for (const pid of workers) try { process.kill(pid, 'SIGCONT') } catch { /* exited */ } })

  t.equal((await fresh(`${url}/plain`, 20)).filter(r => r.startsWith('200 ')).length, 20)
  for (const pid of workers) t.ok(await cli.waitForLine(l => l.msg === 'request' && l.route === 'plain' && l.pid === pid, 10_000), `worker ${pid} served some`)
  t.equal(await metricValue(admin, PLAIN), 20)
  const info = /^portcullis_config_info\{hash="([0-9a-f]+)"\} (\d+)$/m.exec(await (await request(`${admin}/metrics`)).body.text())
  t.equal(info?.[2], '1', 'config_info is 1, not one per worker')

  // A worker too slow to answer (stopped) counts with its last answer.
  process.kill(slow, 'SIGSTOP')
  t.equal(await metricValue(admin, PLAIN), 20, 'a slow worker: its last counts stay in the sum')
  t.equal(await metricValue(admin, PLAIN_COUNT), 20, 'histograms too')
  const partial = await purgeAll(admin)
  t.equal(partial.status, 504, 'a purge not every worker confirmed is not a success')
  t.match(partial.body, { error: 'workers_missing', missing: [slow], workers: [{ pid: other, status: 200, body: { purged: Number } }] })
  process.kill(slow, 'SIGCONT')
  const all = await purgeAll(admin)
  t.equal(all.status, 200)
  t.same(all.body.workers.map(w => w.pid).sort(), [...workers].sort())

  // A worker that exited: its counts stay in the sum, and the one that replaces it adds its own.
  process.kill(slow, 'SIGKILL')
  const crashed = await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === slow)
  t.ok(crashed)
  t.equal(await metricValue(admin, PLAIN), 20, 'a worker gone: its counts stay in the sum')
  t.equal(await metricValue(admin, PLAIN_COUNT), 20)
  const replaced = await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === crashed?.worker && l.workerPid !== slow, 60_000)
  t.ok(replaced, 'a new worker took its place')
  t.equal((await fresh(`${url}/plain`, 10)).filter(r => r.startsWith('200 ')).length, 10)
  t.ok(await cli.waitForLine(l => l.msg === 'request' && l.route === 'plain' && l.pid === replaced?.workerPid, 10_000), 'the new worker served some')
  t.equal(await metricValue(admin, PLAIN), 30, 'the departed, the survivor and the new worker, each counted once')
  t.equal(await metricValue(admin, PLAIN_COUNT), 30)
})

/** A worker's answer: requests by route, and a gauge of its own (its memory, say). */
async function answer (pid: number, requests: Record<string, number>, memory: number) {
  const registry = new Registry()
  const counter = new Counter({ name: 'x_requests_total', help: 'h', labelNames: ['route'], registers: [registry] })
  for (const [route, n] of Object.entries(requests)) counter.inc({ route }, n)
  new Gauge({ name: 'x_memory_bytes', help: 'h', registers: [registry] }).set(memory)
  return { pid, metrics: await registry.getMetricsAsJSON() }
}

t.test('workers: the departed keep one sample per series, however many restarts; their gauges go; a reload retires their routes', async t => {
  const pool = { config: { hash: 'a' }, pids: [1, 2], answers: [] as unknown[], metrics: async () => pool.answers }
  const own = new Metrics({ defaultMetrics: false })
  const scrape = () => clusterMetricsText(own, pool as unknown as WorkerPool, 'prometheus')
  pool.answers = [await answer(1, { plain: 5 }, 100), await answer(2, { plain: 7, [UNMATCHED_ROUTE]: 1 }, 200)]
  let text = await scrape()
  t.match(text, /^x_requests_total\{route="plain"\} 12$/m)
  t.match(text, /^x_memory_bytes 300$/m)

  // Worker 2 restarts 50 times, each time after counting 1 more.
  for (let pid = 3; pid < 53; pid++) {
    pool.pids = [1, pid]
    pool.answers = [await answer(1, { plain: 5 }, 100), await answer(pid, { plain: 1 }, 10)]
    text = await scrape()
  }
  t.match(text, /^x_requests_total\{route="plain"\} 62$/m, 'worker 1: 5; departed: 7 + 49; the live one: 1')
  t.equal(text.split('\n').filter(l => l.startsWith('x_requests_total{route="plain"}')).length, 1)
  t.match(text, /^x_memory_bytes 110$/m, 'gauges of the departed are gone')

  // A reload whose config has no route "plain": its departed series go, as the workers' do.
  pool.config.hash = 'b'
  pool.answers = [await answer(1, { v2: 1 }, 100), await answer(52, { v2: 1 }, 10)]
  text = await scrape()
  t.notMatch(text, 'route="plain"')
  t.match(text, /^x_requests_total\{route="v2"\} 2$/m)
  t.match(text, `x_requests_total{route="${UNMATCHED_ROUTE}"} 1`, 'requests no route took are kept')
})
