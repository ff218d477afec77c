import t, { type Test } from 'tap'
import { rmSync, writeFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import { request } from 'undici'
import { spawnCli, stopCli, type CliProcess } from '../helpers/cli.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile, type ConfigFile } from '../reload/helpers.ts'

type Line = Record<string, unknown>

const INDEX = new URL('../../src/index.ts', import.meta.url).href
const alive = (pid: number) => { try { process.kill(pid, 0); return true } catch { return false } }

/**
 * Two plugins in `dir`: `slow`, whose setup logs "slow setup started" (at warn) and never ends,
 * and `gate`, whose setup fails while the file `closed` exists there.
 */
function writePlugins (dir: string): void {
  writeFileSync(join(dir, 'slow.ts'), `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({ name: 'slow', priority: 500, schema: Type.Object({}), setup: (_config, ctx) => { ctx.log.warn('slow setup started'); return new Promise(() => {}) } })
`)
  writeFileSync(join(dir, 'gate.ts'), `import { existsSync } from 'node:fs'
import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({ name: 'gate', priority: 500, schema: Type.Object({}), setup: () => { if (existsSync(${JSON.stringify(join(dir, 'closed'))})) throw new Error('the gate is closed'); return {} } })
`)
}

interface Cluster { cli: CliProcess, cf: ConfigFile, primary: Line, url: string, admin: string, yaml: (plugins: string, extra?: string) => string }

/** `portcullis start` with two workers (shutdownTimeout 2s, pluginTimeout 20s) and one route to `up` with `plugins`; stopped at teardown. */
async function cluster (t: Test, up: TestUpstream, plugins: string): Promise<Cluster> {
  const cf = await configFile('')
  writePlugins(cf.dir)
  const yaml = (plugins: string, extra = '') => `loadPlugins: [ ./slow.ts, ./gate.ts ]
server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
  pluginTimeout: 20s
admin:
  listen: { host: 127.0.0.1, port: 0 }
${extra}upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: a, plugins: { ${plugins} } }
`
  await cf.write(yaml(plugins))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  return { cli, cf, primary, url: String(primary.url), admin: String(primary.admin), yaml }
}

t.test('workers: SIGTERM during a slow reload stops within shutdownTimeout; the reload fails', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, cf, admin, yaml } = await cluster(t, up, '')

  await cf.write(yaml('slow: {}'))
  const reload = request(`${admin}/config/reload`, { method: 'POST' }).then(r => r.body.json())
  t.ok(await cli.waitForLine(l => l.msg === 'slow setup started', 30_000), 'a worker is building the new config')
  const at = performance.now()
  t.equal(await stopCli(cli), 0, 'exit 0')
  const tookMs = Math.round(performance.now() - at)
  // Workers used to be told to stop only once their reload ended (here: pluginTimeout, 20 s).
  t.ok(tookMs < 6_000, `stopped within shutdownTimeout 2s and a margin (took ${tookMs} ms)`)
  t.match(await reload, { result: 'failed', message: /the gateway is stopping/ })
  t.notOk(cli.lines.some(l => l.msg === 'config reloaded'), 'nothing was put in service')
})

t.test('workers: the primary too takes logging.level from a reload', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, cf, primary, admin, yaml } = await cluster(t, up, '')
  const reload = async () => await (await request(`${admin}/config/reload`, { method: 'POST' })).body.json()

  const mark = cli.lines.length
  await cf.write(yaml('', 'logging: { level: warn }\n'))
  t.match(await reload(), { result: 'success' }, 'to logging.level warn')
  await cf.write(yaml('', 'logging: { level: warn }\nnot: valid\n'))
  t.match(await reload(), { result: 'invalid' }, 'an invalid one after it')
  // Lines of one process come in order: once the error is in, an info line before it would be too.
  t.ok(await cli.waitForLine(l => String(l.msg).startsWith('config reload rejected') && l.pid === primary.pid, 10_000), 'the primary logs the error')
  t.notOk(cli.lines.slice(mark).some(l => l.pid === primary.pid && l.level === 30), 'no info line from the primary after the reload to warn')
})

t.test('workers: a worker that cannot start exits 1, and is restarted', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, cf, primary } = await cluster(t, up, 'gate: {}')
  writeFileSync(join(cf.dir, 'closed'), '')

  const [victim] = primary.workers as number[]
  process.kill(victim as number, 'SIGKILL')
  const failed = await cli.waitForLine(l => l.msg === 'worker exited unexpectedly; restarting it' && l.workerPid !== victim, 60_000)
  t.match(failed, { code: 1, signal: null }, 'its exit code is the one it chose')
  rmSync(join(cf.dir, 'closed'))
  t.ok(await cli.waitForLine(l => l.msg === 'worker serving' && l.worker === failed?.worker, 60_000), 'once its plugin can start, it serves again')
})

t.test('workers: with the primary killed, workers finish the requests in flight, then exit', async t => {
  const held: ServerResponse[] = []
  const up = await startUpstream((req, res) => { req.resume(); held.push(res) })
  t.teardown(() => up.close())
  const { cli, primary, url } = await cluster(t, up, '')
  const workers = primary.workers as number[]
  // Orphans are no longer the CLI's children: stopCli would not reach them.
  t.teardown(() => { for (const pid of workers) if (alive(pid)) process.kill(pid, 'SIGKILL') })

  const answer = rawRequest(Number(new URL(url).port), ['GET / HTTP/1.1', 'Host: x', 'Connection: close'])
    .then(r => r.status, (err: Error) => err.message)
  t.ok(await until(() => held.length === 1, 10_000), 'a request is in flight')
  cli.child.kill('SIGKILL')
  await cli.exited
  t.ok(await cli.waitForLine(l => l.msg === 'shutting down' && workers.includes(l.pid as number), 10_000), 'its worker drains')
  for (const res of held) res.end('late')
  t.equal(await answer, 200, 'the request in flight is answered')
  t.ok(await until(() => !workers.some(alive), 10_000), 'then every worker exits')
})
