import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { configFile, gatewayYaml, namedUpstream, waitFor } from '../reload/helpers.ts'
import { fresh } from './helpers.ts'

type Line = Record<string, unknown>

/** An upstream that serves traffic fine but fails its health check. */
const sickUpstream = () => startUpstream((req: IncomingMessage, res: ServerResponse) => {
  req.resume()
  if (req.url === '/health') res.writeHead(503).end()
  else res.writeHead(200, { 'x-upstream': 'sick' }).end('sick')
})

const servedBy = (lines: Line[], route: string) => new Set(lines.filter(l => l.msg === 'request' && l.route === route).map(l => l.pid))
/** The processes that logged serving `route`, once all of `expected` have (log lines are buffered up to 250 ms). */
async function servedByAll (lines: Line[], route: string, expected: number[]): Promise<Set<unknown>> {
  await waitFor(() => expected.every(pid => servedBy(lines, route).has(pid)) ? true : undefined)
  return servedBy(lines, route)
}

t.test('workers: shared port, restart on crash, reload to all, health decided once, SIGTERM drains', async t => {
  const [good, sick, other] = await Promise.all([namedUpstream('good'), sickUpstream(), namedUpstream('other')])
  const yaml = (routes: string) => gatewayYaml({ pool: [good.url, sick.url], other: [other.url] }, routes).replace(
    '  listen: { host: 127.0.0.1, port: 0 }\nadmin', '  listen: { host: 127.0.0.1, port: 0 }\n  workers: 2\n  shutdownTimeout: 5s\nadmin'
  ).replace(`pool: { targets: [ { url: "${good.url}" }, { url: "${sick.url}" } ] }`,
    `pool: { targets: [ { url: "${good.url}" }, { url: "${sick.url}" } ], healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 } }`)
  const cf = await configFile(yaml('  - { name: api, match: { path: /api }, upstream: pool }'))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([good.close(), sick.close(), other.close(), cf.remove()]) })

  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  t.ok(primary, `primary up (stderr: ${cli.stderr()})`)
  const workers = primary?.workers as number[]
  t.equal(workers.length, 2)
  t.notOk(workers.includes(primary?.pid as number), 'the primary serves no traffic itself')
  const url = String(primary?.url)
  const admin = String(primary?.admin)
  // A worker's lines say which worker wrote them; its own listening line is not the gateway's.
  for (const [index, pid] of workers.entries()) {
    t.match(await cli.waitForLine(l => l.msg === 'worker listening' && l.pid === pid), { worker: index, url }, `worker ${index} logged its listening line`)
  }
  t.same(cli.lines.filter(l => l.msg === 'gateway listening').map(l => l.pid), [primary?.pid], 'one gateway listening line: the primary\'s')

  // Health is decided once, in the primary, and every worker acts on it.
  const unhealthy = await cli.waitForLine(l => l.msg === 'target unhealthy' && l.pid === primary?.pid, 10_000)
  t.match(unhealthy, { upstream: 'pool', target: sick.url })
  t.ok(await waitFor(() => workers.every((pid, index) => cli.lines.some(l => l.msg === 'target unhealthy' && l.pid === pid && l.worker === index)) ? true : undefined), 'both workers were told')
  const answers = await fresh(`${url}/api`, 20)
  t.same(new Set(answers), new Set(['200 good']), 'no worker sends to the unhealthy target')
  t.same(await servedByAll(cli.lines, 'api', workers), new Set(workers), 'both workers serve the shared port')
  const upstreams = await (await request(`${admin}/upstreams`)).body.json() as { upstreams: Array<{ name: string, targets: Array<{ url: string, healthy: boolean }> }> }
  t.match(upstreams.upstreams.find(u => u.name === 'pool')?.targets, [{ url: good.url, healthy: true }, { url: sick.url, healthy: false }])

  // A crashed worker is restarted; the other keeps serving meanwhile.
  const victim = workers[0] as number
  process.kill(victim, 'SIGKILL')
  const crashed = await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === victim)
  t.match(crashed, { level: 50, signal: 'SIGKILL', restartInMs: 100 }, 'a first crash: restarted after 100 ms')
  t.same(new Set(await fresh(`${url}/api`, 6)), new Set(['200 good']), 'requests succeed while it restarts')
  const replaced = await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === crashed?.worker && l.workerPid !== victim, 60_000)
  t.ok(replaced, 'a new worker took its place')
  t.match(await cli.waitForLine(l => l.msg === 'worker listening' && l.pid === replaced?.workerPid), { worker: crashed?.worker }, 'under the same worker index')
  const current = [workers[1], replaced?.workerPid] as number[]
  t.ok(await waitFor(() => cli.lines.some(l => l.msg === 'target unhealthy' && l.pid === replaced?.workerPid) ? true : undefined), 'the new worker learned the health state')

  // A reload is validated once, by the primary; a valid one reaches every worker.
  const before = cli.lines.length
  await cf.write(yaml('  - { name: broken, match: { path: /v2 }, upstream: nowhere }'))
  const invalid = await request(`${admin}/config/reload`, { method: 'POST' })
  t.equal(invalid.statusCode, 422)
  await invalid.body.dump()
  const isRejection = (l: Line) => String(l.msg).startsWith('config reload rejected')
  t.ok(await cli.waitForLine(l => isRejection(l) && l.pid === primary?.pid), 'rejected by the primary')

  await cf.write(yaml('  - { name: v2, match: { path: /v2 }, upstream: other }'))
  const ok = await request(`${admin}/config/reload`, { method: 'POST' })
  t.equal(ok.statusCode, 200)
  t.match(await ok.body.json(), { result: 'success' })
  t.same(new Set(await fresh(`${url}/v2`, 20)), new Set(['200 other']), 'the new config serves at once, on every worker')
  const after = cli.lines.slice(before)
  t.equal(after.filter(isRejection).length, 1, 'the invalid config was rejected once')
  t.notOk(after.some(l => l.msg === 'could not apply the config from the primary'), 'no worker ever saw it')
  t.same(await servedByAll(cli.lines, 'v2', current), new Set(current), 'both workers, the restarted one included, switched')
  t.same(new Set((await fresh(`${url}/api`, 4)).map(a => a.slice(0, 3))), new Set(['404']), 'the old route is gone')

  const metrics = await (await request(`${admin}/metrics`)).body.text()
  t.match(metrics, /portcullis_config_reloads_total\{result="success"\} 1\n/, 'reloads are counted once, by the primary')
  t.match(metrics, /portcullis_config_reloads_total\{result="invalid"\} 1\n/)
  t.equal(metrics.match(/^# TYPE portcullis_config_reloads_total /gm)?.length, 1, 'one exposition for all processes')
  const om = await (await request(`${admin}/metrics`, { headers: { accept: 'application/openmetrics-text' } })).body.text()
  t.match(om, /^portcullis_http_request_duration_seconds_count\{route="v2"\} 20$/m, 'OpenMetrics: summed over the workers')
  const exemplar = /^portcullis_http_request_duration_seconds_bucket\{le="[^"]+",route="v2"\} \d+ # \{trace_id="([0-9a-f]{32})"\}/m.exec(om)
  t.ok(exemplar, 'with the exemplars the workers recorded')
  // Access-log lines are written in batches: wait for the line rather than read what is there.
  t.ok(await cli.waitForLine(l => l.msg === 'request' && l.route === 'v2' && l.traceId === exemplar?.[1], 10_000), "an exemplar's trace id is a request's")

  t.equal(await stopCli(cli), 0, 'SIGTERM: the primary exits 0')
  for (const pid of current) t.ok(cli.lines.some(l => l.msg === 'stopped' && l.pid === pid), `worker ${pid} drained and stopped`)
  t.ok(cli.lines.some(l => l.msg === 'stopped' && l.pid === primary?.pid))
})
