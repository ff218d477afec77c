import t from 'tap'
import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

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
})
