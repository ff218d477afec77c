import t from 'tap'
import { readFile } from 'node:fs/promises'
import { Counter, Gauge, Registry } from 'prom-client'
import { request } from 'undici'
import { Metrics } from '../../src/metrics/metrics.ts'
import { UNMATCHED_ROUTE } from '../../src/metrics/request-metrics.ts'
import { clusterMetricsText, type AppliedConfig } from '../../src/workers/cluster-metrics.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

const PLAIN = 'portcullis_http_requests_total{route="plain",method="GET",status="200"}'
const PLAIN_COUNT = 'portcullis_http_request_duration_seconds_count{route="plain"}'

/**
 * The value of `series` once it is `want`, or the last one read after `maxMs`: a live worker that takes
 * longer than the query timeout (500 ms here) to answer, on a loaded machine, is left out of one scrape.
 */
const settles = async (admin: string, series: string, want: number, maxMs = 10_000) =>
  await waitFor(async () => await metricValue(admin, series) === want ? want : undefined, maxMs) ?? await metricValue(admin, series)

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
  t.equal(await settles(admin, PLAIN, 20), 20)
  const info = /^portcullis_config_info\{hash="([0-9a-f]+)"\} (\d+)$/m.exec(await (await request(`${admin}/metrics`)).body.text())
  t.equal(info?.[2], '1', 'config_info is 1, not one per worker')

  // A worker too slow to answer (stopped) counts with its last answer.
  process.kill(slow, 'SIGSTOP')
  t.equal(await metricValue(admin, PLAIN), 20, 'a slow worker: its last counts stay in the sum')
  t.equal(await metricValue(admin, PLAIN_COUNT), 20, 'histograms too')
  // Only the stopped worker missing (the other may be slow once on a loaded machine: asked again).
  const partial = await waitFor(async () => { const p = await purgeAll(admin); return p.body.missing?.length === 1 ? p : undefined }) ?? await purgeAll(admin)
  t.equal(partial.status, 504, 'a purge not every worker confirmed is not a success')
  t.match(partial.body, { error: 'workers_missing', missing: [slow], workers: [{ pid: other, status: 200, body: { purged: Number } }] })
  process.kill(slow, 'SIGCONT')
  // Resumed, it answers: at once, or once it has caught up with what was asked meanwhile.
  const all = await waitFor(async () => { const p = await purgeAll(admin); return p.status === 200 ? p : undefined }) ?? await purgeAll(admin)
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
  // The new worker, just started, may be slow to answer one scrape; until it does, it counts for nothing.
  t.equal(await settles(admin, PLAIN, 30), 30, 'the departed, the survivor and the new worker, each counted once')
  t.equal(await settles(admin, PLAIN_COUNT, 30), 30)
})

/** The config the workers applied, with routes of these names. */
const config = (hash: string, routes: string[]) => ({ hash, config: { routes: routes.map(name => ({ name })), upstreams: {} } }) as unknown as AppliedConfig

/** A worker's answer: requests by route, and a gauge of its own (its memory, say). */
async function answer (pid: number, requests: Record<string, number>, memory: number) {
  const registry = new Registry()
  const counter = new Counter({ name: 'x_requests_total', help: 'h', labelNames: ['route'], registers: [registry] })
  for (const [route, n] of Object.entries(requests)) counter.inc({ route }, n)
  new Gauge({ name: 'x_memory_bytes', help: 'h', registers: [registry] }).set(memory)
  return { pid, metrics: await registry.getMetricsAsJSON() }
}

t.test('workers: the departed keep one sample per series, however many restarts; their gauges go; a reload retires their routes', async t => {
  const pool = { pids: [1, 2], answers: [] as unknown[], metrics: async () => pool.answers }
  const own = new Metrics({ defaultMetrics: false })
  let applied = config('a', ['plain'])
  const scrape = () => clusterMetricsText(own, pool as unknown as WorkerPool, 'prometheus', applied)
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
  applied = config('b', ['v2'])
  pool.answers = [await answer(1, { v2: 1 }, 100), await answer(52, { v2: 1 }, 10)]
  text = await scrape()
  t.notMatch(text, 'route="plain"')
  t.match(text, /^x_requests_total\{route="v2"\} 2$/m)
  t.match(text, `x_requests_total{route="${UNMATCHED_ROUTE}"} 1`, 'requests no route took are kept')
})

t.test('workers: a reload keeps the counts of a route it still has, though the workers that served it have exited; process figures are not summed', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const routes = (extra = '') => `  - { name: x, match: { path: /x }, upstream: u, plugins: { cache: {} } }
  - { name: y, match: { path: /y }, upstream: u, plugins: { cache: {} } }
${extra}`
  // Without request metrics, only the cache's series name a route, and only once it was requested.
  const { cli, primary, workers, url, admin, reload } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, routes(), { extra: 'metrics: { requests: false }' })
  const text = async () => await (await request(`${admin}/metrics`)).body.text()
  const onX = async () => (await text()).split('\n').filter(l => l.startsWith('portcullis_cache_requests_total{route="x",')).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)

  t.equal((await fresh(`${url}/x`, 6)).filter(r => r.startsWith('200 ')).length, 6)
  t.equal(await onX(), 6)
  for (const pid of workers) process.kill(pid, 'SIGKILL')
  for (const pid of workers) {
    const crashed = await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === pid)
    t.ok(await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === crashed?.worker && !workers.includes(l.workerPid as number), 60_000), 'replaced')
  }
  t.equal(await onX(), 6, 'the counts of the workers gone stay')
  t.match(await reload(routes('  - { name: z, match: { path: /z }, upstream: u }')), { result: 'success' })
  t.equal(await onX(), 6, 'a reload that keeps route x keeps its counts, though no live worker has a series of it')
  t.match(await reload(routes().replace(/^ {2}- \{ name: x,.*\n/m, '')), { result: 'success' })
  t.equal(await onX(), 0, 'a reload without route x drops them')

  // One process's figures, not three processes' sum: the primary's start, the highest descriptor limit.
  const limits = await readFile(`/proc/${String(primary.pid)}/limits`, 'utf8')
  const maxFds = Number(/^Max open files +(\d+)/m.exec(limits)?.[1])
  t.equal(await metricValue(admin, 'portcullis_process_max_fds'), maxFds, 'portcullis_process_max_fds: one process\'s limit')
  const started = await metricValue(admin, 'portcullis_process_start_time_seconds')
  t.ok(started > 0 && started <= Date.now() / 1000, `portcullis_process_start_time_seconds: ${started}`)
})

t.test('workers: event-loop lag is the worst process\'s, not a mean that hides a stalled worker', async t => {
  const lag = async (pid: number, seconds: number) => {
    const registry = new Registry()
    for (const q of ['', '_p90', '_p99']) new Gauge({ name: `portcullis_nodejs_eventloop_lag${q}_seconds`, help: 'h', aggregator: 'average', registers: [registry] }).set(seconds)
    return { pid, metrics: await registry.getMetricsAsJSON() }
  }
  const pool = { pids: [1, 2], metrics: async () => [await lag(1, 0.01), await lag(2, 5)] }
  // The primary's own default metrics come first and decide the aggregator.
  const text = await clusterMetricsText(new Metrics(), pool as unknown as WorkerPool, 'prometheus', config('a', []))
  for (const q of ['', '_p90', '_p99']) t.match(text, new RegExp(`^portcullis_nodejs_eventloop_lag${q}_seconds 5$`, 'm'), `lag${q}: the stalled worker's`)
})
