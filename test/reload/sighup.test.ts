import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile, gatewayYaml, namedUpstream, waitFor, WATCH_SETTLE_MS } from './helpers.ts'

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
  t.ok(cli.lines.some(l => l.msg === 'stopped'))
})
