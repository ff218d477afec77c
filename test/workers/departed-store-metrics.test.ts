import t from 'tap'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { configFile, waitFor } from '../reload/helpers.ts'
import { fresh } from './helpers.ts'

// The series of a store a reload removed came back in /metrics, with a crashed worker's counts: its departed
// samples were pruned by route and upstream only, and the live workers still have the metrics (for other stores).
t.test('workers: a reload without a store drops a crashed worker\'s series of it; a store kept keeps its counts', async t => {
  const redis = await RedisProcess.start()
  const up = await startUpstream()
  t.teardown(() => Promise.all([up.close(), redis.stop()]))
  const limited = (name: string, store: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: u, plugins: { rate-limit: { store: ${store}, by: [ ip ], limits: [ { name: l, requests: 1000, window: 1h } ] } } }\n`
  const yaml = (stores: string, routes: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
${stores}
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
${routes}`
  const kept = `  kept: { type: redis, url: "${redis.url}" }\n`
  const cf = await configFile(yaml(`  shared: { type: redis, url: "${redis.url}" }\n  small: { type: memory }\n${kept}`, limited('a', 'shared') + limited('b', 'kept')))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const [url, admin] = [String(primary.url), String(primary.admin)]
  const [victim] = primary.workers as [number]
  const KEPT = 'portcullis_store_command_duration_seconds_count{store="kept"}'
  const SHARED = 'portcullis_store_command_duration_seconds_count{store="shared"}'

  t.equal((await fresh(`${url}/a`, 6)).filter(r => r.startsWith('200 ')).length, 6)
  t.equal((await fresh(`${url}/b`, 6)).filter(r => r.startsWith('200 ')).length, 6)
  for (const route of ['a', 'b']) t.ok(await cli.waitForLine(l => l.msg === 'request' && l.route === route && l.pid === victim, 10_000), `worker ${victim} served route ${route}`)
  // This scrape holds the victim's last answer, which its departure adds to the departed.
  const before = await metricValue(admin, KEPT)
  t.ok(before > 0 && await metricValue(admin, SHARED) > 0, 'both Redis stores ran commands')

  process.kill(victim, 'SIGKILL')
  const crashed = await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid === victim)
  t.ok(await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === crashed?.worker && l.workerPid !== victim, 60_000), 'replaced')
  t.equal(await metricValue(admin, KEPT), before, 'the crashed worker\'s counts stay')

  await cf.write(yaml(kept, limited('b', 'kept')))
  t.match(await (await request(`${admin}/config/reload`, { method: 'POST' })).body.json(), { result: 'success' }, 'reloaded without stores shared and small')
  const gone = await waitFor(async () => {
    const text = await (await request(`${admin}/metrics`)).body.text()
    return /store="(shared|small)"/.test(text) ? undefined : text
  }, 10_000)
  t.ok(gone, 'no series of the stores removed, the crashed worker\'s included')
  t.equal(await metricValue(admin, KEPT), before, 'the store kept keeps the crashed worker\'s counts')
})
