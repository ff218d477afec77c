import t, { type Test } from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { configFile, namedUpstream } from '../reload/helpers.ts'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { until } from '../helpers/wait.ts'
import { fresh, startCluster } from './helpers.ts'

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))
/** A worker's build released unused: overtaken by a later config, or called off by the primary. */
const RELEASED = /^config (overtaken while it was built|called off by the primary)/
const HELD = 'config built: held out of service until every worker has built it'
// Six clusters, each waiting out apply timeouts: 200 s on a loaded machine, near tap's 240 s a file.
t.setTimeout(480_000)
/**
 * The primary's patience for a worker's config (PORTCULLIS_WORKER_APPLY_TIMEOUT_MS): a start waits three of
 * them for a whole first build (modules and plugins loaded), which took over 9 s on a loaded machine.
 */
const APPLY_MS = 5_000

/** Upstreams a, b and c (each answers its name), closed at teardown; `route` writes the one route, on /v. */
async function upstreams (t: Test): Promise<string> {
  const ups = await Promise.all(['a', 'b', 'c'].map(name => namedUpstream(name)))
  t.teardown(() => Promise.all(ups.map(u => u.close())))
  return ups.map((u, i) => `  ${'abc'[i]}: { targets: [ { url: "${u.url}" } ] }`).join('\n')
}
const route = (name: string, upstream: string, trap?: string) =>
  `  - { name: ${name}, match: { path: /v }, upstream: ${upstream}${trap === undefined ? '' : `, plugins: { trap: ${trap} }`} }`

t.test('workers: a reload one worker does not build in time fails on every worker, and that worker\'s late build never goes into service', async t => {
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, url, reload } = await startCluster(t, await upstreams(t), route('v1', 'a'),
    { loadPlugins: [TRAP], env: { PORTCULLIS_WORKER_APPLY_TIMEOUT_MS: String(APPLY_MS) } })
  const slow = workers[1] as number
  const released = () => cli.lines.filter(l => RELEASED.test(String(l.msg)) && l.pid === slow).length
  const held = () => cli.lines.filter(l => l.msg === HELD && l.pid === workers[0]).length
  const v2 = route('v2', 'b', `{ file: "${hold}", worker: 1 }`)

  // Worker 1's build of v2 waits past the primary's patience; worker 0 built it, and never switches.
  writeFileSync(hold, '')
  t.match(await reload(v2), { result: 'failed', message: `worker ${slow}: worker ${slow} did not answer within ${APPLY_MS} ms` })
  t.ok(cli.lines.some(l => l.msg === 'held setup begins' && l.pid === slow), 'worker 1 is still building v2')
  t.same(new Set(await fresh(`${url}/v`, 6)), new Set(['200 a']), 'every worker serves v1')
  rmSync(hold)
  t.ok(await until(() => released() === 1, 10_000), 'worker 1 released its late build of v2 unused')
  t.same(new Set(await fresh(`${url}/v`, 6)), new Set(['200 a']), 'every worker still serves v1')

  // Again; then a good reload while worker 1 still builds v2: no worker takes it before worker 1 has built it too.
  writeFileSync(hold, '')
  t.match(await reload(v2), { result: 'failed' })
  const v3 = reload(route('v3', 'c'))
  t.ok(await until(() => held() === 3, 10_000), 'worker 0 built v3')
  t.same(new Set(await fresh(`${url}/v`, 6)), new Set(['200 a']), 'and holds it: every worker still serves v1')
  rmSync(hold)
  t.match(await v3, { result: 'success' })
  t.ok(await until(() => released() === 2, 10_000), 'worker 1 released its late build of v2 unused')
  t.same(new Set(await fresh(`${url}/v`, 6)), new Set(['200 c']), 'every worker serves v3, and keeps to it')
})

t.test('workers: a reload failed by a worker that exited names that worker', async t => {
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, reload } = await startCluster(t, await upstreams(t), route('v1', 'a'), { loadPlugins: [TRAP] })
  const victim = workers[1] as number
  writeFileSync(hold, '')
  const v2 = reload(route('v2', 'b', `{ file: "${hold}", worker: 1 }`))
  t.ok(await cli.waitForLine(l => l.msg === 'held setup begins' && l.pid === victim, 10_000), 'worker 1 builds v2')
  process.kill(victim, 'SIGKILL')
  t.match(await v2, { result: 'failed', message: `worker ${victim}: worker ${victim} exited` })
  rmSync(hold)
})

t.test('workers: a restarted worker whose first build outlasts the apply timeout is waited for, and gets later reloads', async t => {
  const hold = join(t.testdir({}), 'hold')
  const { cli, workers, url, reload } = await startCluster(t, await upstreams(t), route('v1', 'a', `{ file: "${hold}", worker: 1 }`),
    { loadPlugins: [TRAP], env: { PORTCULLIS_WORKER_APPLY_TIMEOUT_MS: String(APPLY_MS) } })
  writeFileSync(hold, '')
  process.kill(workers[1] as number, 'SIGKILL')
  const waiting = await cli.waitForLine(l => l.msg === 'restarted worker still building its config; waiting for it', 30_000)
  t.match(waiting, { worker: 1 }, 'its first build takes longer than the primary waits for an answer')
  rmSync(hold)
  t.ok(await cli.waitForLine(l => l.msg === 'worker serving' && l.workerPid === waiting?.workerPid, 10_000), 'it serves, and the primary knows')
  t.match(await reload(route('v2', 'b')), { result: 'success' })
  t.same(new Set(await fresh(`${url}/v`, 6)), new Set(['200 b']), 'every worker serves v2, the restarted one included')
  t.notOk(cli.lines.some(l => l.msg === 'restarted worker failed to start'), 'not given up on')
})

/**
 * A cluster whose worker 1 holds its first build while `hold` exists, the primary's patience APPLY_MS a try:
 * shorter tries failed the start on the wrong worker, the one not held, on a loaded machine.
 */
async function heldStart (t: Test, hold: string) {
  const cf = await configFile(`loadPlugins: ${JSON.stringify([TRAP])}
server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
upstreams:
${await upstreams(t)}
routes:
${route('v1', 'a', `{ file: "${hold}", worker: 1 }`)}
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'], { PORTCULLIS_WORKER_APPLY_TIMEOUT_MS: String(APPLY_MS) })
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  return cli
}

t.test('workers: a first build at start that outlasts the apply timeout is waited for, not a crash of the primary', async t => {
  const hold = join(t.testdir({}), 'hold')
  writeFileSync(hold, '')
  const cli = await heldStart(t, hold)
  // (Worker 0's first build may outlast APPLY_MS too on a loaded machine: waited for the same way.)
  t.ok(await cli.waitForLine(l => l.msg === 'worker still building its first config; waiting for it' && l.worker === 1, 60_000),
    `the primary waits for worker 1 (stderr: ${cli.stderr()})`)
  rmSync(hold)
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 30_000)
  t.ok(primary, `the cluster starts (stderr: ${cli.stderr()})`)
  t.same(new Set(await fresh(String(primary?.url) + '/v', 6)), new Set(['200 a']), 'both workers serve')
})

t.test('workers: a first build that never ends fails the start after a few apply timeouts; a stop asked meanwhile ends it cleanly', async t => {
  const hung = join(t.testdir({}), 'hold')
  writeFileSync(hung, '')
  const given = await heldStart(t, hung)
  t.not(await given.exited, 0, `the start fails (stderr: ${given.stderr()})`)
  const heldPid = given.lines.find(l => l.msg === 'worker started' && l.worker === 1)?.workerPid
  t.match(given.stderr(), `worker ${String(heldPid)} did not answer within ${APPLY_MS} ms`, 'saying which worker did not answer: the held one')
  t.equal(given.lines.filter(l => l.msg === 'worker still building its first config; waiting for it' && l.worker === 1).length, 2, 'after three tries')

  const stopped = await heldStart(t, hung)
  t.ok(await stopped.waitForLine(l => l.msg === 'worker still building its first config; waiting for it' && l.worker === 1, 60_000), 'waiting')
  stopped.child.kill('SIGTERM')
  t.equal(await stopped.exited, 0, `one SIGTERM stops it (stderr: ${stopped.stderr()})`)
  t.ok(stopped.lines.some(l => l.msg === 'stopped: a signal was received during startup'))
  rmSync(hung)
})
