import t from 'tap'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile, waitFor } from './helpers.ts'

/** Whether a new connection to `url` is accepted (the listener still open). */
const accepts = (url: string) => new Promise<boolean>(resolve => {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.once('connect', () => { socket.destroy(); resolve(true) })
  socket.once('error', () => resolve(false))
})

/** Whether `url` refuses connections within `maxMs`. */
async function refusesWithin (url: string, maxMs: number): Promise<boolean> {
  for (const start = performance.now(); performance.now() - start < maxMs; await sleep(20)) if (!await accepts(url)) return true
  return false
}

// The stop used to wait for the reload under way (a plugin's setup may take up to pluginTimeout)
// before closing the listener: new connections were served meanwhile, /readyz already 503.
t.test('a stop during a slow reload closes the listener at once; the reload, ending later, fails', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a }'))
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  const gate = sharedWithPlugins('stop-during-reload', { started: false, release: () => {} })
  writeUserPlugin(cf.dir, 'held', 500, "new Promise(resolve => { const g = shared('stop-during-reload'); g.started = true; g.release = () => resolve({}) })")
  const yaml = gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { held: {} } }', 'loadPlugins: [ ./held.ts ]')
  const gw = await startFromFile(cf.file)

  await cf.write(yaml)
  const reload = gw.reloader.reload('admin')
  t.ok(await until(() => gate.started), 'the reload is in its plugin setup')
  const closed = gw.close()
  t.ok(await refusesWithin(gw.url, 5_000), 'new connections are refused while the reload is still under way')
  gate.release()
  t.match(await reload, { result: 'failed', error: 'the gateway is stopping' })
  await closed
  t.notOk(gw.logs.some(l => l.msg === 'config reloaded'))
  t.match(gw.logs.find(l => l.trigger === 'admin'), { level: 40, msg: 'config reload not done: the gateway is stopping' }, 'logged as ended by the stop')
  t.notOk(gw.logs.some(l => String(l.msg).includes('keeps serving')), 'not as a reload that failed while the gateway serves on')
})

/** POST /config/reload: its status and JSON body. */
async function adminReload (adminUrl: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const res = await request(`${adminUrl}/config/reload`, { method: 'POST' })
  return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
}

const STOPPED = { result: 'failed', error: 'reload_failed', message: 'the config was not reloaded (the gateway is stopping)' }

// It answered 200 "unchanged" (nothing done, though the file had changed), and was not counted.
t.test('POST /config/reload during the stop fails, 503 "the gateway is stopping": counted and reported as failed', async t => {
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const slow = await startUpstream((_req, res) => { void held.then(() => res.end('done')) })
  const cf = await configFile(gatewayYaml({ a: [slow.url] }, '  - { name: r, match: { path: /* }, upstream: a }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { release(); await Promise.all([slow.close(), cf.remove()]) })

  const inFlight = request(gw.url)
  t.ok(await waitFor(() => gw.gateway.runtime.inFlight > 0 ? true : undefined))
  const closed = gw.close()
  await cf.write(gatewayYaml({ a: [slow.url] }, '  - { name: other, match: { path: /* }, upstream: a }'))
  const reload = await adminReload(gw.adminUrl as string)
  t.equal(reload.status, 503)
  t.match(reload.body, STOPPED)
  t.match(await (await request(`${gw.adminUrl}/config`)).body.json(), { lastReload: { result: 'failed', error: 'the gateway is stopping' } })
  t.match(await (await request(`${gw.adminUrl}/metrics`)).body.text(), /portcullis_config_reloads_total\{result="failed"\} 1/)
  t.ok(gw.logs.some(l => l.msg === 'config reload not done: the gateway is stopping'))
  release()
  t.equal(await (await inFlight).body.text(), 'done')
  await closed
})

t.test('a reload under way when the stop begins answers 503 failed, and one asked meanwhile (queued behind it) fails too', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a }'))
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  const gate = sharedWithPlugins('stop-during-admin-reload', { started: false, release: () => {} })
  writeUserPlugin(cf.dir, 'held', 500, "new Promise(resolve => { const g = shared('stop-during-admin-reload'); g.started = true; g.release = () => resolve({}) })")
  const gw = await startFromFile(cf.file)

  await cf.write(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { held: {} } }', 'loadPlugins: [ ./held.ts ]'))
  const running = adminReload(gw.adminUrl as string)
  t.ok(await until(() => gate.started), 'the reload is in its plugin setup')
  const closed = gw.close()
  // Asked as POST /config/reload does, but known to be queued before the release.
  const queued = gw.reloader.reload('admin')
  gate.release()
  const first = await running
  t.equal(first.status, 503)
  t.match(first.body, STOPPED)
  t.match(await queued, { result: 'failed', error: 'the gateway is stopping' }, 'the queued one fails too (it answered "unchanged")')
  await closed
  const counted = (await gw.metrics.configReloads.get()).values.find(v => v.labels.result === 'failed')?.value
  t.equal(counted, 2, 'both counted as failed')
})

// The stop waited for the reload to end (up to pluginTimeout), past shutdownTimeout, and logged it
// as "failed while building the new runtime; the active config keeps serving".
t.test('a stop during a reload that outlasts shutdownTimeout abandons it: the stop keeps to its deadline', async t => {
  const a = await namedUpstream('a')
  const server = 'server:\n  shutdownTimeout: 300ms\n  pluginTimeout: 20s\n'
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a }').replace('server:\n', server))
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  const gate = sharedWithPlugins('stop-abandons-reload', { started: false, release: () => {} })
  writeUserPlugin(cf.dir, 'held', 500, "new Promise(resolve => { const g = shared('stop-abandons-reload'); g.started = true; g.release = () => resolve({}) })")
  const gw = await startFromFile(cf.file)

  await cf.write('loadPlugins: [ ./held.ts ]\n' + gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { held: {} } }').replace('server:\n', server))
  const reload = gw.reloader.reload('admin')
  t.ok(await until(() => gate.started), 'the reload is in its plugin setup')
  const at = performance.now()
  await gw.close()
  const tookMs = Math.round(performance.now() - at)
  // Waiting for the reload, it would take pluginTimeout (20 s).
  t.ok(tookMs < 5_000, `stopped within shutdownTimeout 300ms and a margin for a loaded machine (took ${tookMs} ms)`)
  t.match(gw.logs.find(l => l.msg === 'config reload abandoned: the gateway is stopping'), { level: 40, waitedMs: 300 })
  t.equal(gw.logs.at(-1)?.msg, 'stopped', 'then stopped')

  // Ending later, it is not put in service, and says nothing more.
  const lines = gw.logs.length
  gate.release()
  t.match(await reload, { result: 'failed', error: 'the gateway is stopping' })
  t.equal(gw.logs.length, lines, 'no line after the stop')
})
