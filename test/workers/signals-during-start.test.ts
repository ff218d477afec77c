import t, { type Test } from 'tap'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnCli, spawnNode, stopCli, type CliProcess } from '../helpers/cli.ts'
import { CLI_FROM_SOURCES } from '../helpers/run-cli.ts'
import { until } from '../helpers/wait.ts'
import { configFile, namedUpstream } from '../reload/helpers.ts'
import { fresh } from './helpers.ts'

const TRAP = fileURLToPath(new URL('./trap-plugin.ts', import.meta.url))
const HOLD_IMPORT = fileURLToPath(new URL('./hold-import.mjs', import.meta.url))

/**
 * `portcullis start` with two workers whose plugin setup holds while `hold` exists (it does at
 * first), once both workers are in it; and a way to signal every process, as a terminal's Ctrl-C
 * or `systemctl stop` (the whole cgroup) does.
 */
async function starting (t: Test): Promise<{ cli: CliProcess, signalAll: (signal: NodeJS.Signals) => void }> {
  const a = await namedUpstream('a')
  const cf = await configFile('')
  const hold = join(cf.dir, 'hold')
  await cf.write(`loadPlugins: [ ${JSON.stringify(TRAP)} ]
server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 2s
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  a: { targets: [ { url: "${a.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: a, plugins: { trap: { file: ${JSON.stringify(hold)} } } }
`)
  writeFileSync(hold, '')
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([a.close(), cf.remove()]) })
  const held = new Set<number>()
  t.ok(await cli.waitForLine(l => { if (l.msg === 'held setup begins') held.add(l.pid as number); return held.size === 2 }, 60_000), `both workers are starting (stderr: ${cli.stderr()})`)
  const pids = () => [cli.child.pid as number, ...held]
  return { cli, signalAll: signal => { for (const pid of pids()) process.kill(pid, signal) } }
}

t.test('workers: a stop signal to every process while the workers start stops the gateway cleanly', async t => {
  const { cli, signalAll } = await starting(t)
  signalAll('SIGINT')
  t.equal(await cli.exited, 0, 'exit 0')
  t.notOk(/^\s+at /m.test(cli.stderr()), `no stack trace on stderr: ${cli.stderr()}`)
  t.ok(cli.lines.some(l => l.msg === 'stopped: a signal was received during startup'), 'said so')
  t.notOk(cli.lines.some(l => l.msg === 'worker exited unexpectedly; restarting it'), 'no worker was restarted')
})

t.test('workers: SIGHUP to every process while the workers load only reloads, once started', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
upstreams:
  a: { targets: [ { url: "${a.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: a }
`)
  // The workers wait in the import of the start command, where they used to have no SIGHUP handler yet.
  const hold = join(cf.dir, 'hold-import')
  writeFileSync(hold, '')
  const cli = spawnNode(['--import', HOLD_IMPORT, ...CLI_FROM_SOURCES, 'start', '-c', cf.file, '--no-watch'], { PORTCULLIS_TEST_HOLD_IMPORT: hold })
  t.teardown(async () => { await stopCli(cli); await Promise.all([a.close(), cf.remove()]) })
  const workers: number[] = []
  await cli.waitForLine(l => { if (l.msg === 'worker started') workers.push(l.workerPid as number); return workers.length === 2 }, 30_000)
  t.ok(await until(() => workers.length === 2 && workers.every(pid => existsSync(`${hold}.${pid}`)), 30_000), `both workers are loading (stderr: ${cli.stderr()})`)
  for (const pid of [cli.child.pid as number, ...workers]) process.kill(pid, 'SIGHUP')
  rmSync(hold)

  const listening = await cli.waitForLine(l => l.msg === 'gateway listening', 60_000)
  t.ok(listening, `the gateway started (stderr: ${cli.stderr()})`)
  t.same(listening?.workers, workers, 'with the workers signalled')
  t.ok(await cli.waitForLine(l => l.msg === 'config reloaded' && l.trigger === 'signal', 30_000), 'the held SIGHUP reloaded the config')
  t.same(new Set(await fresh(`${String(listening?.url)}/r`, 4)), new Set(['200 a']))
})
