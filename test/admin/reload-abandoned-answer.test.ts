import t from 'tap'
import { request } from 'undici'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

// The stop abandoned the reload, then closed the admin listener with the request unanswered: the
// client saw its connection cut (docs/operations.md says 503).
t.test('POST /config/reload under way when the stop abandons it is answered 503 before the admin listener closes', async t => {
  const a = await namedUpstream('a')
  const server = 'server:\n  shutdownTimeout: 300ms\n  pluginTimeout: 20s\n'
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a }').replace('server:\n', server))
  const gate = sharedWithPlugins('abandoned-reload-answer', { started: false, release: () => {} })
  t.teardown(async () => { gate.release(); await Promise.all([a.close(), cf.remove()]) })
  writeUserPlugin(cf.dir, 'held', 500, "new Promise(resolve => { const g = shared('abandoned-reload-answer'); g.started = true; g.release = () => resolve({}) })")
  const gw = await startFromFile(cf.file)

  await cf.write('loadPlugins: [ ./held.ts ]\n' + gatewayYaml({ a: [a.url] }, '  - { name: r, match: { path: /* }, upstream: a, plugins: { held: {} } }').replace('server:\n', server))
  const answer = request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
    .then(async res => ({ status: res.statusCode, body: await res.body.json() }), (err: Error) => ({ status: 0, body: err.message }))
  t.ok(await until(() => gate.started, 10_000), 'the reload is in its plugin setup')
  await gw.close()
  t.ok(gw.logs.some(l => l.msg === 'config reload abandoned: the gateway is stopping'), 'abandoned by the stop')
  t.match(await answer, { status: 503, body: { result: 'failed', error: 'reload_failed', message: 'the config was not reloaded (the gateway is stopping)' } })
})
