import t from 'tap'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { spawnCli, stopCli, type CliProcess } from './helpers/cli.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'
import { configFile, gatewayYaml, namedUpstream, startupGate } from './reload/helpers.ts'

// A stop takes at most server.shutdownTimeout (supervisors size their grace period to it): once
// `stopped` is logged the process exits, whatever still holds its event loop.

/**
 * The exit code (or signal) of `cli` once sent SIGTERM, and how long it took; SIGKILLed (as 'killed') after `maxMs`.
 * Resolves once its output is read to the end too ('exit' may come before its last lines), or 5 s later.
 */
async function stopTimed (cli: CliProcess, maxMs: number): Promise<{ code: number | string, ms: number }> {
  const at = performance.now()
  const stdout = cli.child.stdout as Readable
  const outputRead = stdout.closed ? Promise.resolve() : once(stdout, 'close')
  cli.child.kill('SIGTERM')
  const code = await Promise.race([cli.exited, sleep(maxMs, 'killed' as const)])
  const ms = Math.round(performance.now() - at)
  if (code === 'killed') { cli.child.kill('SIGKILL'); await cli.exited }
  await Promise.race([outputRead, sleep(5_000)])
  return { code, ms }
}

const timed = (server: string) => (yaml: string) => yaml.replace('server:\n', `server:\n${server}`)

for (const workers of [1, 2]) {
  t.test(`start (workers: ${workers}) exits once stopped, though a loaded plugin module keeps a timer running`, async t => {
    const a = await namedUpstream('a')
    const cf = await configFile('')
    t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
    const plugin = writeUserPlugin(cf.dir, 'ticker', 500, '{}')
    writeFileSync(plugin, readFileSync(plugin, 'utf8') + 'setInterval(() => {}, 1000)\n')
    await cf.write('loadPlugins: [ ./ticker.ts ]\n' + timed(`  shutdownTimeout: 1s\n  workers: ${workers}\n`)(
      gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { ticker: {} } }')))
    const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
    t.teardown(() => stopCli(cli, 1_000))
    const listening = await cli.waitForLine(l => l.msg === 'gateway listening' && (workers === 1 || Array.isArray(l.workers)))
    t.ok(listening, `started (stderr: ${cli.stderr()})`)
    t.equal((await request(String(listening?.url))).statusCode, 200)

    const { code, ms } = await stopTimed(cli, 15_000)
    t.equal(code, 0, `exits 0 once stopped (took ${ms} ms; the timer used to keep it alive)`)
    t.equal(cli.lines.at(-1)?.msg, 'stopped', 'the last line is written')
  })
}

t.test('a SIGTERM during a slow reload: the reload is abandoned and the process exits within shutdownTimeout', async t => {
  const [a, b] = await Promise.all([namedUpstream('a'), namedUpstream('b')])
  const yaml = (upstream: 'a' | 'b', plugins: string) => timed('  shutdownTimeout: 1s\n  pluginTimeout: 20s\n')(
    gatewayYaml({ [upstream]: [(upstream === 'a' ? a : b).url] }, `  - { name: r, match: { path: /* }, upstream: ${upstream}, plugins: { ${plugins} } }`))
  const cf = await configFile(yaml('a', ''))
  t.teardown(async () => { await Promise.all([a.close(), b.close(), cf.remove()]) })
  const gate = startupGate(cf.dir)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(() => stopCli(cli, 1_000))
  t.ok(await cli.waitForLine(l => l.msg === 'gateway listening'), `started (stderr: ${cli.stderr()})`)

  // The gate's setup waits for a file that never comes: it would hold the reload for pluginTimeout, then the process.
  await cf.write('loadPlugins: [ ./gate.ts ]\n' + yaml('b', 'gate: {}'))
  cli.child.kill('SIGHUP')
  t.ok(await gate.reached(), 'the reload is in its plugin setup')
  // Held by the reload, it would take pluginTimeout (20 s).
  const { code, ms } = await stopTimed(cli, 15_000)
  t.equal(code, 0, 'exit 0')
  t.ok(ms < 10_000, `within shutdownTimeout 1s and a margin for a loaded machine (took ${ms} ms)`)
  t.match(cli.lines.find(l => l.msg === 'config reload abandoned: the gateway is stopping'), { level: 40, waitedMs: 1000 }, 'logged as abandoned for the stop')
  t.notOk(cli.lines.some(l => String(l.msg).includes('keeps serving')), 'not as a reload that failed while the gateway serves on')
  t.equal(cli.lines.at(-1)?.msg, 'stopped')
})
