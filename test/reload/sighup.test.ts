import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, gatewayYaml, namedUpstream, startupGate, waitFor, WATCH_SETTLE_MS } from './helpers.ts'

const api = (upstream: string) => `  - { name: api, match: { path: /api }, upstream: ${upstream} }`
const body = async (url: string) => { const res = await request(url); return `${res.statusCode} ${await res.body.text()}` }

t.test('SIGHUP reloads the config of a running `portcullis start`; an invalid file is rejected', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const cf = await configFile(gatewayYaml({ a: [a.url] }, api('a')))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([a.close(), b.close(), cf.remove()]) })

  const listening = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(listening, `started (stderr: ${cli.stderr()})`)
  t.equal(listening?.watching, false, '--no-watch: only SIGHUP and the admin API reload')
  const url = `${String(listening?.url)}/api`
  t.equal(await body(url), '200 a')

  await cf.write(gatewayYaml({ b: [b.url] }, api('b')))
  // Asserting that nothing happens: wait past the watcher's 150 ms debounce, which a watching gateway would have acted on.
  await sleep(WATCH_SETTLE_MS)
  t.equal(await body(url), '200 a', 'a changed file alone changes nothing')
  cli.child.kill('SIGHUP')
  const reloaded = await cli.waitForLine(l => l.msg === 'config reloaded')
  t.match(reloaded, { trigger: 'signal' })
  t.equal(await body(url), '200 b')

  await cf.write(gatewayYaml({ b: [b.url] }, api('b')).replace('routes:', 'routes:\n  - { name: broken, match: { path: nope }, upstream: b }'))
  cli.child.kill('SIGHUP')
  const rejected = await cli.waitForLine(l => String(l.msg).startsWith('config reload rejected'))
  t.match(rejected, { level: 50, trigger: 'signal', issues: [new RegExp(`^${cf.file}:\\d+:\\d+ routes\\[0\\]\\.match\\.path: must start with /`)] })
  t.equal(await body(url), '200 b', 'the previous config keeps serving')
  t.equal(await waitFor(() => cli.child.exitCode === null ? 'running' : undefined, 100), 'running', 'still running')

  t.equal(await stopCli(cli), 0, 'SIGTERM exits 0')
  // 'exit' may come before the last lines of its output are read.
  t.ok(await cli.waitForLine(l => l.msg === 'stopped', 5_000))
})

const gated = (upstream: string) => `  - { name: api, match: { path: /api }, upstream: ${upstream}, plugins: { gate: {} } }`

t.test('a SIGHUP while the gateway starts does not end it: the config is reloaded once it has started (systemctl reload right after start)', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const cf = await configFile('loadPlugins: [ ./gate.ts ]\n' + gatewayYaml({ a: [a.url] }, gated('a')))
  const gate = startupGate(cf.dir)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await Promise.all([a.close(), b.close(), cf.remove()]) })

  t.ok(await gate.reached(), `the start is under way (stderr: ${cli.stderr()})`)
  await cf.write('loadPlugins: [ ./gate.ts ]\n' + gatewayYaml({ b: [b.url] }, gated('b')))
  cli.child.kill('SIGHUP')
  // The gate opens once the signal is handled: opened at once, the start could end first (the
  // child's poll timer and the signal may come in one turn of its event loop, timers first).
  t.match(await cli.waitForLine(l => l.signal === 'SIGHUP', 30_000), { level: 30, msg: /during startup/ }, 'logged')
  gate.open()
  const listening = await cli.waitForLine(l => l.msg === 'gateway listening', 60_000)
  t.ok(listening, `started (exit: ${cli.child.exitCode ?? cli.child.signalCode}, stderr: ${cli.stderr()})`)
  t.match(await cli.waitForLine(l => l.msg === 'config reloaded', 30_000), { trigger: 'signal' })
  t.equal(await body(`${String(listening?.url)}/api`), '200 b', 'the file as it was at the SIGHUP serves')
  t.equal(await stopCli(cli), 0)
})

t.test('a SIGTERM while the gateway starts: it stops, with a log line, and exits 0 once started; a second one ends it at once', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile('loadPlugins: [ ./gate.ts ]\n' + gatewayYaml({ a: [a.url] }, gated('a')))
  const gate = startupGate(cf.dir)
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })

  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(() => stopCli(cli))
  t.ok(await gate.reached(), `the start is under way (stderr: ${cli.stderr()})`)
  cli.child.kill('SIGTERM')
  // Opened once the signal is handled (see the SIGHUP test).
  t.match(await cli.waitForLine(l => l.signal === 'SIGTERM', 30_000), { level: 30, msg: /during startup/ })
  gate.open()
  t.equal(await cli.exited, 0, `exit 0 (stderr: ${cli.stderr()})`)
  t.ok(await cli.waitForLine(l => l.msg === 'stopped', 5_000), 'stopped as on any SIGTERM')

  // The start held up for good (a plugin's setup that never ends): the second signal is not held.
  const stuck = await configFile('loadPlugins: [ ./gate.ts ]\n' + gatewayYaml({ a: [a.url] }, gated('a')))
  const stuckGate = startupGate(stuck.dir)
  t.teardown(() => stuck.remove())
  const again = spawnCli(['start', '-c', stuck.file, '--no-watch'])
  t.teardown(() => stopCli(again))
  t.ok(await stuckGate.reached())
  again.child.kill('SIGINT')
  t.match(await again.waitForLine(l => l.signal === 'SIGINT', 10_000), { msg: /during startup: the gateway stops once started/ }, 'held, and logged')
  again.child.kill('SIGTERM')
  t.equal(await again.exited, 'SIGTERM', 'the second signal ends it: killed by it, not exit 143')
  t.ok(await again.waitForLine(l => l.msg === 'second signal: ending now', 5_000), 'and says so')
})
