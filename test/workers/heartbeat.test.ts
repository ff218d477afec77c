import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

// Heartbeats every 300 ms: a worker silent for 1.5 s is unresponsive; one silent for 9 s is killed.
const HEARTBEAT_MS = 300

t.test('workers: a hung worker does not count as serving; /readyz and /healthz fail when all are; the watchdog kills one hung too long', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, workers, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, '  - { name: r, match: { path: /r }, upstream: u }',
    { env: { PORTCULLIS_WORKER_HEARTBEAT_MS: String(HEARTBEAT_MS) } })
  const [a, b] = workers as [number, number]
  // A stopped worker must not outlive the test (the primary's SIGTERM could not reach it).
  t.teardown(() => { for (const pid of workers) try { process.kill(pid, 'SIGCONT') } catch { /* exited */ } })
  const probes = async () => `${(await request(`${admin}/healthz`)).statusCode} ${(await request(`${admin}/readyz`)).statusCode}`
  const probesSay = (want: string) => waitFor(async () => await probes() === want ? want : undefined, 10_000)
  t.equal(await probes(), '200 200')

  // Lines from the stop on: a loaded machine can make a worker slow to answer while it starts (logged, and a line matched too soon).
  const since = cli.lines.length
  const logged = (msg: string, pid: number, maxMs?: number) => cli.waitForLine(l => l.msg === msg && l.workerPid === pid && cli.lines.indexOf(l) >= since, maxMs)
  process.kill(a, 'SIGSTOP')
  t.ok(await logged('worker unresponsive: not counted as serving', a, 10_000), 'one worker stopped: logged unresponsive')
  t.equal(await probes(), '200 200', 'the other still serves: alive and ready')

  process.kill(b, 'SIGSTOP')
  t.equal(await probesSay('503 503'), '503 503', 'every worker hung: neither alive nor ready')

  process.kill(a, 'SIGCONT')
  t.equal(await probesSay('200 200'), '200 200', 'one answers again: alive and ready')
  t.ok(await logged('worker responsive again', a, 10_000), 'logged')

  // b stays stopped: the watchdog kills it, and it is restarted as after a crash.
  const killed = await logged('worker unresponsive too long; killing it', b, 30_000)
  t.match(killed, { level: 50, limitMs: 30 * HEARTBEAT_MS })
  t.match(await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === b), { signal: 'SIGKILL', reason: /^unresponsive for \d+ ms$/ })
  t.ok(await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === killed?.worker && l.workerPid !== b, 60_000), 'a new worker took its place')
  t.notOk(cli.lines.some(l => l.msg === 'worker unresponsive too long; killing it' && l.workerPid === a), 'the worker that answered again was left alone')
  t.equal(await probes(), '200 200')
})

t.test('workers: a primary stopped longer than the kill limit, then resumed (Ctrl-Z, docker pause): the workers that served all along are kept', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  // Heartbeats every 150 ms: a worker silent for 750 ms would be unresponsive, one silent for 4.5 s killed.
  const { cli, workers, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, '  - { name: r, match: { path: /r }, upstream: u }',
    { env: { PORTCULLIS_WORKER_HEARTBEAT_MS: '150' } })
  const primary = cli.child.pid as number
  t.teardown(() => { try { process.kill(primary, 'SIGCONT') } catch { /* exited */ } })
  // Judged from the stall on: a loaded machine can make a worker slow to answer while it starts.
  const since = cli.lines.length
  process.kill(primary, 'SIGSTOP')
  // The stall itself: no event marks its end, the primary runs nothing meanwhile.
  await sleep(5_500)
  process.kill(primary, 'SIGCONT')
  t.match(await cli.waitForLine(l => l.msg === 'primary stalled: the workers\' silence meanwhile is not counted', 10_000), { level: 40, stalledMs: Number })
  // The beat that logged it judged the workers too (a kill would be logged by now), as did the probes.
  t.equal(`${(await request(`${admin}/healthz`)).statusCode} ${(await request(`${admin}/readyz`)).statusCode}`, '200 200')
  t.notOk(cli.lines.slice(since).some(l => l.msg === 'worker unresponsive too long; killing it' || l.msg === 'worker unresponsive: not counted as serving'), 'no worker judged silent')
  for (const pid of workers) t.doesNotThrow(() => process.kill(pid, 0), `worker ${pid} still runs`)
})
