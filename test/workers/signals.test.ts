import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { stopCli } from '../helpers/cli.ts'
import { namedUpstream, waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

t.test('workers: SIGHUP to a worker is ignored; SIGTERM while a worker restarts stops at once', async t => {
  const a = await namedUpstream('a')
  t.teardown(() => a.close())
  const { cli, primary, workers, url } = await startCluster(t, `  a: { targets: [ { url: "${a.url}" } ] }`, '  - { name: all, match: { path: /* }, upstream: a }')
  const [hupped, killed] = workers as [number, number]

  // Reloads are the primary's job: a HUP to the process group (or `pkill -HUP -f`) must not end a worker.
  const mark = cli.lines.length
  process.kill(hupped, 'SIGHUP')
  // Asserting that nothing happens: time for a worker that took SIGHUP's default action to be gone.
  await sleep(300)
  t.ok(alive(hupped), 'the worker survived SIGHUP')
  t.same(new Set(await fresh(`${url}/x`, 10)), new Set(['200 a']))
  t.ok(await waitFor(() => cli.lines.slice(mark).some(l => l.msg === 'request' && l.pid === hupped) ? true : undefined), 'and it still serves')

  // SIGTERM lands while the crashed worker's replacement is starting (which takes a second or more).
  process.kill(killed, 'SIGKILL')
  const started = await cli.waitForLine(l => l.msg === 'worker started' && !workers.includes(l.workerPid as number), 10_000)
  t.ok(started, 'a replacement was forked')
  const stopAt = performance.now()
  t.equal(await stopCli(cli), 0, 'the primary exits 0')
  const tookMs = Math.round(performance.now() - stopAt)
  // A stall would last until the kill at the deadline + 5 s; a busy machine can take 2 s for a good stop.
  t.ok(tookMs < 5_000, `well before the kill at 2 + 5 s (took ${tookMs} ms)`)
  t.notOk(cli.lines.some(l => l.msg === 'worker did not stop in time; killing it'), 'no worker had to be killed')

  t.notOk(cli.lines.some(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === hupped), 'the HUP never showed as a crash')
  const shutdown = cli.lines.findIndex(l => String(l.msg).startsWith('shutting down') && l.pid === primary.pid)
  t.notOk(cli.lines.slice(shutdown).some(l => l.msg === 'worker serving'), 'no worker started serving after shutdown began')
  t.notOk(alive(started?.workerPid as number), 'the replacement is gone too')
})
