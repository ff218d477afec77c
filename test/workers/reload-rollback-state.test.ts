import t, { type Test } from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { namedUpstream, waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))
const GONE = 'portcullis_http_requests_total{route="gone",method="GET",status="200"}'
const CALLED_OFF = 'config called off by the primary (not every worker could build it, or the gateway stops): released unused'

/** Routes `limited` (2 an hour per client, counted in the memory store `counters`) and `gone`; `more`: further route items. */
const routes = (maxEntries: number, more = '') => `  - { name: limited, match: { path: /limited }, upstream: u, plugins: { rate-limit: { store: counters, by: [ ip ], limits: [ { name: h, requests: 2, window: 1h } ] } } }
${more}
stores:
  counters: { type: memory, maxEntries: ${maxEntries} }`
// Top-level `stores:` after the route items: a reload (which rewrites what follows `routes:`) changes the store's settings.
const withGone = (maxEntries: number) => routes(maxEntries, '  - { name: gone, match: { path: /gone }, upstream: u }')

/** A two-worker cluster on v1 whose `gone` route both workers counted (4 requests), and the cluster's /metrics value for it. */
async function counted (t: Test) {
  const up = await namedUpstream('u')
  t.teardown(() => up.close())
  const cluster = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, withGone(1000), { loadPlugins: [TRAP] })
  // Each on a connection of its own: the workers take them in turn.
  t.same(await fresh(`${cluster.url}/gone`, 4), Array(4).fill('200 u'))
  const gone = async () => (await (await request(`${cluster.admin}/metrics`)).body.text()).split('\n').find(l => l.startsWith(`${GONE} `))
  t.equal(await gone(), `${GONE} 4`)
  return { ...cluster, gone }
}

t.test('workers: a reload one worker cannot build leaves every worker\'s state as it was: rate-limit counters, a removed route\'s counters', async t => {
  const closed = join(t.testdir({}), 'closed')
  const { cli, workers, url, reload, gone } = await counted(t)
  // 2 an hour per worker (memory stores are per worker): new connections until both have let theirs through.
  let passed = 0
  for (let i = 0; i < 40 && passed < 4; i++) if ((await fresh(`${url}/limited`, 1))[0]?.startsWith('200 ') === true) passed++
  t.equal(passed, 4, 'each worker let 2 through')
  const refused = async () => (await fresh(`${url}/limited`, 6)).filter(r => r.startsWith('429 ')).length
  t.equal(await refused(), 6, 'then 429 on both workers')

  // A new store setting, `gone` removed, and a plugin whose setup fails in worker 1 only: worker 0 builds it all.
  writeFileSync(closed, '')
  t.match(await reload(routes(2000, `  - { name: trap, match: { path: /trap }, upstream: u, plugins: { trap: { file: "${closed}", worker: 1, fail: true } } }`)),
    { result: 'failed', message: /the trap is closed/ })
  t.ok(await cli.waitForLine(l => l.msg === CALLED_OFF && l.pid === workers[0], 10_000), 'worker 0 had built it, and released it')
  t.equal(await refused(), 6, 'the counters are as they were: still 429 on both workers')
  t.equal(await gone(), `${GONE} 4`, 'the removed route\'s counter neither reset nor gone')
  t.same(await fresh(`${url}/gone`, 2), ['200 u', '200 u'], 'every worker serves the active config')
})

t.test('workers: while one worker still builds a reload, none has switched: a removed route\'s counters stay whole', async t => {
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, url, reload, gone } = await counted(t)
  writeFileSync(hold, '')
  const v2 = reload(routes(1000, `  - { name: trap, match: { path: /trap }, upstream: u, plugins: { trap: { file: "${hold}", worker: 1 } } }`))
  t.ok(await cli.waitForLine(l => l.msg === 'held setup begins' && l.pid === workers[1], 30_000), 'worker 1 builds v2')
  t.equal(await gone(), `${GONE} 4`, 'the removed route\'s counter is whole meanwhile')
  t.same(await fresh(`${url}/gone`, 2), ['200 u', '200 u'], 'every worker still serves v1')
  rmSync(hold)
  t.match(await v2, { result: 'success' })
  t.equal(await gone(), undefined, 'then the route\'s series is gone')
  t.same((await fresh(`${url}/gone`, 2)).map(r => r.slice(0, 3)), ['404', '404'], 'and every worker serves v2')
})

/** Upstreams a and b (each answers its name), closed at teardown, as the cluster's upstreams. */
async function twoUpstreams (t: Test): Promise<string> {
  const ups = await Promise.all(['a', 'b'].map(name => namedUpstream(name)))
  t.teardown(() => Promise.all(ups.map(u => u.close())))
  return ups.map((u, i) => `  ${'ab'[i]}: { targets: [ { url: "${u.url}" } ] }`).join('\n')
}
const route = (upstream: string, trap?: string) => `  - { name: v, match: { path: /v }, upstream: ${upstream}${trap === undefined ? '' : `, plugins: { trap: ${trap} }`} }`
const HELD = 'config built: held out of service until every worker has built it'

t.test('workers: a worker restarted while a reload is being built starts on the config in service, and takes the reload\'s once it is in', async t => {
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, url, reload } = await startCluster(t, await twoUpstreams(t), route('a'), { loadPlugins: [TRAP] })
  const [first, restarted] = workers as [number, number]
  writeFileSync(hold, '')
  const v2 = reload(route('b', `{ file: "${hold}", worker: 0 }`))
  t.ok(await cli.waitForLine(l => l.msg === HELD && l.pid === restarted, 10_000), 'worker 1 built v2, and holds it')
  t.ok(await cli.waitForLine(l => l.msg === 'held setup begins' && l.pid === first, 30_000), 'worker 0 still builds it')
  process.kill(restarted, 'SIGKILL')
  const again = await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === 1 && l.workerPid !== restarted, 30_000)
  t.ok(again, 'worker 1 restarted')
  t.same(new Set(await fresh(`${url}/v`, 4)), new Set(['200 a']), 'every worker serves v1, the restarted one included')
  rmSync(hold)
  t.match(await v2, { result: 'success' })
  t.ok(await waitFor(async () => (await fresh(`${url}/v`, 4)).every(r => r === '200 b') ? true : undefined, 10_000), 'then every worker serves v2')
  t.notOk(cli.lines.some(l => l.msg === 'worker did not put in service the config every worker had built'), 'the worker gone is not reported as failing')
})

t.test('workers: a worker restarting through a reload is brought to its config once it serves; restarted again while it cannot build it', async t => {
  const dir = t.testdir({})
  const [hold, closed] = [join(dir, 'hold'), join(dir, 'closed')]
  const { cli, workers, url, reload } = await startCluster(t, await twoUpstreams(t), route('a', `{ file: "${hold}", worker: 1 }`), { loadPlugins: [TRAP] })
  writeFileSync(hold, '')
  writeFileSync(closed, '')
  process.kill(workers[1] as number, 'SIGKILL')
  const starting = await cli.waitForLine(l => l.msg === 'held setup begins' && l.worker === 1 && l.pid !== workers[1], 30_000)
  t.ok(starting, 'the restarted worker 1 still builds v1')
  // Asked of the serving workers only: worker 0.
  t.match(await reload(route('b', `{ file: "${closed}", worker: 1, fail: true }`)), { result: 'success' })
  rmSync(hold)
  t.match(await cli.waitForLine(l => l.msg === 'worker serves another config than the gateway\'s and cannot build it: restarting it', 30_000),
    { worker: 1, workerPid: starting?.pid, err: /the trap is closed/ }, 'serving v1, it cannot build v2: restarted')
  rmSync(closed)
  t.ok(await waitFor(async () => (await fresh(`${url}/v`, 4)).every(r => r === '200 b') ? true : undefined, 30_000), 'then every worker serves v2')
})
