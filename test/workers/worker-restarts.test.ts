import t from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, namedUpstream, waitFor } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))
/** Where trap-plugin.ts throws "the trap is closed". */
const THROWS_AT = `${TRAP}:17:`

const metric = async (admin: string, series: string): Promise<number | undefined> => {
  const text = await (await request(`${admin}/metrics`)).body.text()
  const line = text.split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('workers: a restarted worker that cannot build the config in service is logged as such, with where the plugin threw, and counted', async t => {
  const up = await namedUpstream('a')
  t.teardown(() => up.close())
  const closed = join(t.testdir({}), 'closed')
  const route = (name: string) => `  - { name: ${name}, match: { path: /v }, upstream: a, plugins: { trap: { file: "${closed}", worker: 1, fail: true } } }`
  const { cli, workers, admin, reload } = await startCluster(t, `  a: { targets: [ { url: "${up.url}" } ] }`, route('v1'), { loadPlugins: [TRAP] })
  t.equal(await metric(admin, 'portcullis_workers_serving'), 2)
  t.equal(await metric(admin, 'portcullis_worker_restarts_total{reason="setup_failed"}'), 0, 'each reason at 0 from the start')

  // Worker 1's plugin setup fails from now on (as a plugin file edited on disk would): its replacement cannot start.
  writeFileSync(closed, '')
  process.kill(workers[1] as number, 'SIGKILL')
  const failed = await cli.waitForLine(l => l.msg?.toString().startsWith('restarted worker cannot build the config in service') === true, 30_000)
  t.match(failed, { level: 50, worker: 1, err: { message: 'route "v1", plugin trap: the trap is closed' } }, 'a failed build, not a bare crash')
  t.match(String((failed?.err as { stack?: string } | undefined)?.stack), THROWS_AT, 'with where the plugin threw')
  t.ok(await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.reason === 'could not build its first config', 10_000), 'its exit says why')
  t.equal(await metric(admin, 'portcullis_worker_restarts_total{reason="crashed"}'), 1, 'the kill')
  t.ok(await waitFor(async () => (await metric(admin, 'portcullis_worker_restarts_total{reason="setup_failed"}') ?? 0) >= 1 ? true : undefined, 10_000), 'the failed build')
  t.equal(await metric(admin, 'portcullis_workers_serving'), 1, 'one worker serves')

  rmSync(closed)
  t.ok(await waitFor(async () => await metric(admin, 'portcullis_workers_serving') === 2 ? true : undefined, 60_000), 'both serve again')

  // A reload the trap fails on worker 1: the primary's log says where the plugin threw.
  writeFileSync(closed, '')
  t.match(await reload(route('v2')), { result: 'failed', message: /the trap is closed/ })
  const reloadFailed = await cli.waitForLine(l => l.msg?.toString().startsWith('config reload failed while building the new runtime') === true, 10_000)
  t.match(String((reloadFailed?.err as { stack?: string } | undefined)?.stack), THROWS_AT, 'the reload failure says where the plugin threw')
  rmSync(closed)
})

t.test('workers: a plugin setup failing at start says where the plugin threw, as in a single process', async t => {
  const up = await namedUpstream('a')
  const closed = join(t.testdir({}), 'closed')
  writeFileSync(closed, '')
  const cf = await configFile(`loadPlugins: [ "${TRAP}" ]
server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: v, match: { path: /v }, upstream: a, plugins: { trap: { file: "${closed}", fail: true } } }
`)
  t.teardown(async () => { await up.close(); await cf.remove() })
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(() => stopCli(cli))
  t.equal(await cli.exited, 1, `exits 1 (stderr: ${cli.stderr()})`)
  t.match(cli.stderr(), `cannot start: route "v", plugin trap: the trap is closed (at ${THROWS_AT}`)
})
