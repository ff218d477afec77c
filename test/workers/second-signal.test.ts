import t, { type Test } from 'tap'
import { once } from 'node:events'
import { request } from 'undici'
import { spawnCli, stopCli, type CliProcess } from '../helpers/cli.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { configFile } from '../reload/helpers.ts'

type Line = Record<string, unknown>

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

/** An upstream whose downloads never end: each holds its worker's drain until the deadline. */
async function endlessDownloads (t: Test): Promise<TestUpstream> {
  const up = await startUpstream((req, res) => { req.resume(); res.writeHead(200).write('x'.repeat(1024)) })
  t.teardown(() => up.close())
  return up
}

interface Draining { cli: CliProcess, closed: Promise<unknown>, primary: Line, workers: number[], cut: Promise<unknown> }

/**
 * `portcullis start` with two workers (shutdownTimeout 60s) and a download in flight on one of
 * them; `first` is the first stop signal, sent by the caller. Resolves once every worker is
 * draining: the one with the download logged `shutting down` with it in flight, the other stopped.
 */
async function draining (t: Test, up: TestUpstream, first: (c: { cli: CliProcess, workers: number[] }) => void): Promise<Draining> {
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 60s
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: u }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  // Its output read to the end: lines written on exit may come after 'exit'.
  const closed = once(cli.child, 'close')
  t.teardown(async () => { await stopCli(cli, 1_000); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const workers = primary.workers as number[]
  t.teardown(() => { for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL') })
  const download = await request(`${String(primary.url)}/download`)
  t.equal(download.statusCode, 200, 'a download in flight')
  const cut = download.body.text().catch((err: Error) => err)
  first({ cli, workers })
  // The primary told them to drain (or they got the signal themselves): the next stop signal ends them.
  const busy = await cli.waitForLine(l => l.msg === 'shutting down' && l.inFlight === 1 && workers.includes(l.pid as number), 30_000)
  t.ok(busy, 'the worker with the download drains it')
  t.ok(await cli.waitForLine(l => l.msg === 'stopped' && l.pid !== busy?.pid && workers.includes(l.pid as number), 30_000), 'the other one, idle, stopped')
  return { cli, closed, primary, workers, cut }
}

async function endsAtOnce (t: Test, d: Draining, second: () => void, signal: NodeJS.Signals): Promise<void> {
  const sent = performance.now()
  second()
  t.equal(await d.cli.exited, signal, `the primary is killed by ${signal}, its log flushed first`)
  t.equal(d.cli.child.exitCode, null, 'no exit code: a shell running `portcullis start; next` stops there')
  const tookMs = Math.round(performance.now() - sent)
  t.ok(tookMs < 20_000, `at once, not at the 60 s deadline (took ${tookMs} ms)`)
  t.same(d.workers.filter(alive), [], 'no worker is left running')
  t.type(await d.cut, Error, 'the download was cut')
  await d.closed
  const ended = d.cli.lines.filter(l => l.msg === 'second signal: ending now')
  t.match(ended.find(l => l.pid === d.primary.pid), { level: 40 }, 'the primary logged its end')
  t.match(ended.find(l => l.pid !== d.primary.pid), { inFlight: 1 }, 'so did the worker with the download, its log flushed')
  t.notOk(d.cli.lines.some(l => l.msg === 'worker did not end at once; killing it'), 'no worker had to be killed')
}

t.test('workers: a second SIGTERM to the primary ends its workers at once too, then the primary', async t => {
  const up = await endlessDownloads(t)
  const d = await draining(t, up, ({ cli }) => cli.child.kill('SIGTERM'))
  await endsAtOnce(t, d, () => d.cli.child.kill('SIGTERM'), 'SIGTERM')
})

t.test('workers: a double Ctrl-C (SIGINT to every process, twice) ends them all at once', async t => {
  const up = await endlessDownloads(t)
  const everyone = (workers: number[], cli: CliProcess) => { for (const pid of [cli.child.pid as number, ...workers]) process.kill(pid, 'SIGINT') }
  const d = await draining(t, up, ({ cli, workers }) => everyone(workers, cli))
  await endsAtOnce(t, d, () => everyone(d.workers.filter(alive), d.cli), 'SIGINT')
})
