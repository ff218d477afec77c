import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startFromFile, namedUpstream } from '../reload/helpers.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'
import { CLI_FROM_SOURCES, runCliHere, runNode } from '../helpers/run-cli.ts'

// A plugin's setup or dispose that never finishes once wedged every later reload (each queued
// behind it), and the gateway's close, for good; at start, the gateway hung without a word.
const dir = mkdtempSync(join(tmpdir(), 'plugin-timeouts-'))
const late = sharedWithPlugins('late', { release: () => {}, disposed: false })
writeUserPlugin(dir, 'hang', 500, 'new Promise(() => {})')
writeUserPlugin(dir, 'late', 500, "new Promise(resolve => { shared('late').release = () => resolve({ dispose: () => { shared('late').disposed = true } }) })")
writeUserPlugin(dir, 'stuck-dispose', 500, '{ dispose: () => new Promise(() => {}) }')
writeUserPlugin(dir, 'bad-dispose', 500, "{ dispose: () => { throw new Error('dispose broke') } }")
writeUserPlugin(dir, 'throws', 500, "(() => { throw new Error('no key configured') })()")
// A JS plugin's setup that forgot its `return {}`, and one whose hooks are not functions.
writeUserPlugin(dir, 'no-hooks', 500, 'undefined')
const badHooks = sharedWithPlugins('bad-hooks', { disposed: false })
writeUserPlugin(dir, 'bad-hooks', 500, "{ onRequest: 'x', dispose: () => { shared('bad-hooks').disposed = true } }")
const up = await namedUpstream('a')
t.teardown(() => up.close())

const file = join(dir, 'gateway.yaml')
function writeConfig (plugins: string, workers = 1): void {
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 300ms
  workers: ${workers}
admin:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./hang.ts, ./late.ts, ./stuck-dispose.ts, ./bad-dispose.ts, ./throws.ts, ./no-hooks.ts, ./bad-hooks.ts ]
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: a, plugins: { ${plugins} } }
`)
}

/** POST /config/reload, bounded: a reload that never answers fails the test instead of hanging it. */
async function reload (adminUrl: string): Promise<{ result: string, error?: string, message?: string }> {
  const res = await request(`${adminUrl}/config/reload`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
  return await res.body.json() as { result: string, error?: string, message?: string }
}

t.test('on reload: a setup past server.pluginTimeout fails the new config, named; the active one serves, and later reloads work', async t => {
  writeConfig("stuck-dispose: {}, bad-dispose: {}")
  const gw = await startFromFile(file)
  let closed = false
  t.teardown(async () => { if (!closed) await gw.close() })

  writeConfig('hang: {}')
  t.match(await reload(gw.adminUrl as string), { result: 'failed', error: 'reload_failed', message: 'route "r", plugin hang: setup did not finish within 300 ms (server.pluginTimeout)' })
  t.equal((await request(`${gw.url}/x`)).statusCode, 200, 'the active config serves')

  writeConfig('late: {}')
  t.match(await reload(gw.adminUrl as string), { result: 'failed', error: 'reload_failed', message: /plugin late: setup did not finish/ }, 'the next reload is not stuck behind it')
  late.release()
  t.ok(await until(() => late.disposed), 'a setup that finishes after its config was given up is disposed of then')

  // The active config's plugins are disposed when it is replaced: one hangs, one throws.
  writeConfig('')
  t.match(await reload(gw.adminUrl as string), { result: 'success' })
  t.match(await waitForLog(gw.logs, { msg: 'plugin dispose did not finish within server.pluginTimeout; left behind' }), { plugin: 'stuck-dispose', timeoutMs: 300 })
  t.match(await waitForLog(gw.logs, { msg: 'plugin dispose failed' }), { plugin: 'bad-dispose', err: { message: 'dispose broke' } })
  closed = true
  await gw.close()
})

t.test('at start: one line naming route and plugin, exit 1; in worker mode from the primary, no stack trace', async t => {
  writeConfig('hang: {}')
  await t.rejects(startFromFile(file), { code: 'PCL_ERR_PLUGIN_SETUP', plugin: 'hang', route: 'r' })
  const expected = 'portcullis: cannot start: route "r", plugin hang: setup did not finish within 300 ms (server.pluginTimeout)\n'
  const here = await runCliHere('start', '-c', file)
  t.equal(here.code, 1)
  t.equal(here.stderr, expected)
  writeConfig('hang: {}', 2)
  const workers = await runNode([...CLI_FROM_SOURCES, 'start', '-c', file])
  t.equal(workers.code, 1)
  t.equal(workers.stderr, expected)
  t.notMatch(workers.stdout, /"level":50/, 'no error log line from the workers')
})

t.test('a setup that throws: its own message, the route and plugin added when it names neither', async t => {
  writeConfig('throws: {}')
  const run = await runCliHere('start', '-c', file)
  t.equal(run.code, 1)
  t.match(run.stderr, /^portcullis: cannot start: route "r", plugin throws: no key configured \(at [^)]*\/throws\.ts:\d+:\d+\)\n$/)
})

t.test('a setup that returns no hooks, or hooks that are not functions: a setup error at start (the one line above); on reload a failed reload, the active config serving', async t => {
  writeConfig('no-hooks: {}')
  await t.rejects(startFromFile(file), {
    code: 'PCL_ERR_PLUGIN_SETUP', plugin: 'no-hooks', route: 'r',
    message: 'route "r", plugin no-hooks: setup must return its hooks (an object, {} for none), not undefined'
  })

  writeConfig('')
  const gw = await startFromFile(file)
  t.teardown(() => gw.close())
  writeConfig('bad-hooks: {}')
  t.match(await reload(gw.adminUrl as string), { result: 'failed', error: 'reload_failed', message: 'route "r", plugin bad-hooks: setup must return hooks that are functions: onRequest is a string' })
  t.ok(await until(() => badHooks.disposed), 'what it set up is disposed of')
  writeConfig('no-hooks: {}')
  t.match(await reload(gw.adminUrl as string), { result: 'failed', error: 'reload_failed', message: /plugin no-hooks: setup must return its hooks/ })
  t.equal((await request(`${gw.url}/x`)).statusCode, 200, 'the active config serves')
})
