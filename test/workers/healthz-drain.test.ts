import t from 'tap'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile } from '../reload/helpers.ts'

// Heartbeats every 250 ms: a worker silent for 1.25 s is unresponsive, one silent for 7.5 s would be killed.
const HEARTBEAT_MS = 250
const UNRESPONSIVE_MS = 5 * HEARTBEAT_MS
const HUNG_MS = 30 * HEARTBEAT_MS

const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

// The heartbeat stopped with the stop: 5 heartbeats into a drain, /healthz said every worker was hung.
t.test('workers: /healthz stays 200 while a worker drains after SIGTERM; one hung then is left to the stop\'s deadline', async t => {
  const held: ServerResponse[] = []
  const up = await startUpstream((req, res) => { req.resume(); held.push(res) })
  t.teardown(() => up.close())
  // A long shutdownTimeout: the drain lasts until the test answers the request in flight.
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 60s
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: u }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'], { PORTCULLIS_WORKER_HEARTBEAT_MS: String(HEARTBEAT_MS) })
  t.teardown(async () => { for (const res of held) res.end(); await stopCli(cli); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const workers = primary.workers as number[]
  const healthz = async () => (await request(`${String(primary.admin)}/healthz`)).statusCode

  const answer = rawRequest(Number(new URL(String(primary.url)).port), ['GET / HTTP/1.1', 'Host: x', 'Connection: close'])
    .then(r => r.status, (err: Error) => err.message)
  t.ok(await until(() => held.length === 1, 10_000), 'a request is in flight')
  const since = cli.lines.length
  cli.child.kill('SIGTERM')
  t.ok(await cli.waitForLine(l => l.msg === 'shutting down' && workers.includes(l.pid as number), 10_000), 'a worker drains')
  t.ok(await until(() => workers.filter(alive).length === 1, 10_000), 'the idle worker has exited')
  const draining = workers.find(alive) as number
  t.teardown(() => { try { process.kill(draining, 'SIGCONT') } catch { /* exited */ } })

  // No event marks the moment the worker would have been judged silent: /healthz is asked throughout a span well past it.
  const codes = new Set<number>()
  for (const start = performance.now(); performance.now() - start < 2 * UNRESPONSIVE_MS;) codes.add(await healthz())
  t.same([...codes], [200], `/healthz answered 200 throughout ${2 * UNRESPONSIVE_MS} ms of drain`)
  t.notOk(cli.lines.slice(since).some(l => l.msg === 'worker unresponsive: not counted as serving'), 'no worker judged silent')

  // Hung while it drains: judged so, but not killed by the watchdog (the stop kills it at its deadline, 60 s + 5 s here).
  const stopped = cli.lines.length
  process.kill(draining, 'SIGSTOP')
  // A line after the stop: waitForLine would take one from the start (a worker slow to load on a busy machine).
  const judged = () => cli.lines.slice(stopped).some(l => l.msg === 'worker unresponsive: not counted as serving' && l.workerPid === draining)
  t.ok(await until(judged, 10_000), 'the heartbeat still runs')
  t.equal(await healthz(), 503, 'every worker with a config hung: /healthz 503')
  t.notOk(await cli.waitForLine(l => l.msg === 'worker unresponsive too long; killing it', HUNG_MS), `not killed ${HUNG_MS} ms on`)
  process.kill(draining, 'SIGCONT')

  for (const res of held.splice(0)) res.end('late')
  t.equal(await answer, 200, 'the request in flight is answered')
  t.equal(await cli.exited, 0, 'then the gateway exits 0')
})
