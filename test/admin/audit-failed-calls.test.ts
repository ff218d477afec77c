import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

// Set before the server module loads: the purge's 600 ms outlast it.
process.env.PORTCULLIS_PLUGIN_ADMIN_TIMEOUT_MS = '200'
const { startGateway } = await import('../helpers/gateway.ts')
const { startCluster } = await import('../workers/helpers.ts')

// Each endpoint makes its change (a file named after it) before failing, or after its timeout.
const dir = t.testdir({
  'slowp.ts': `import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { definePlugin, Type } from 'portcullis'
const change = (name: string) => writeFileSync(join(import.meta.dirname, name), '')
const later = () => new Promise(resolve => setTimeout(resolve, 600))
export default definePlugin({
  name: 'slowp',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    ctx.shared('admin', () => {
      ctx.admin.route('POST', '/purge', async () => { await later(); change('purged') })
      ctx.admin.route('POST', '/half', () => { change('half'); throw new Error('the second half failed') })
      ctx.admin.route('DELETE', '/late-failure', async () => { await later(); throw new Error('failed after its answer') })
    })
    return {}
  }
})
`
})
const CONFIG = `loadPlugins: [./slowp.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { slowp: {} } }
`

// A 504 (the handler still running), a 500 after a partial change, a workers_missing: none was
// audited (only statuses under 400 were), and what the abandoned handler did later went unlogged.
t.test('a failed call that may change something is still audited, and an abandoned handler\'s late end is logged under its call', async t => {
  const gw = await startGateway(CONFIG, { admin: true, file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const call = async (method: 'POST' | 'DELETE', path: string) => {
    const res = await request(`${gw.adminUrl as string}/plugins/slowp${path}`, { method })
    const text = await res.body.text()
    return { status: res.statusCode, body: (text === '' ? {} : JSON.parse(text)) as { error?: string } }
  }
  const calls = () => gw.logs.filter(l => l.msg === 'admin call')

  t.match(await call('POST', '/purge'), { status: 504, body: { error: 'gateway_timeout' } })
  t.notOk(existsSync(join(dir, 'purged')), 'answered before the handler finished')
  const timedOut = await waitForLog(gw.logs, { msg: 'admin call', path: '/plugins/slowp/purge' })
  t.match(timedOut, { level: 30, clientIp: '127.0.0.1', method: 'POST', status: 504, error: 'gateway_timeout', callId: Number }, 'the 504 is audited')
  const late = await waitForLog(gw.logs, { msg: 'plugin admin call finished late' })
  t.match(late, { level: 40, callId: timedOut?.callId, clientIp: '127.0.0.1', method: 'POST', path: '/plugins/slowp/purge', status: 204 }, 'its late end, under the same call')
  t.ok(existsSync(join(dir, 'purged')), 'which made its change')

  t.match(await call('POST', '/half'), { status: 500, body: { error: 'internal_error' } })
  t.ok(existsSync(join(dir, 'half')), 'a change made before the failure')
  t.match(await waitForLog(gw.logs, { msg: 'admin call', path: '/plugins/slowp/half' }), { status: 500, error: 'internal_error', clientIp: '127.0.0.1' }, 'the 500 is audited')

  t.match(await call('DELETE', '/late-failure'), { status: 504 })
  const failing = await waitForLog(gw.logs, { msg: 'admin call', path: '/plugins/slowp/late-failure' })
  t.match(failing, { method: 'DELETE', status: 504, error: 'gateway_timeout' })
  t.match(await waitForLog(gw.logs, { msg: 'plugin admin call failed late' }),
    { level: 50, callId: failing?.callId, method: 'DELETE', path: '/plugins/slowp/late-failure', err: { message: /failed after its answer/ } }, 'a late failure too')

  // No endpoint reached, nothing changed: not an admin call.
  t.equal((await call('POST', '/nowhere')).status, 404)
  t.equal((await call('DELETE', '/purge')).status, 405)
  t.equal((await request(`${gw.adminUrl as string}/nowhere`, { method: 'POST' })).statusCode, 404)
  t.equal((await request(`${gw.adminUrl as string}/config/reload`, { method: 'PUT' })).statusCode, 405)
  t.ok(await until(() => calls().length >= 3), 'the three calls')
  t.same(calls().map(l => l.path), ['/plugins/slowp/purge', '/plugins/slowp/half', '/plugins/slowp/late-failure'], 'each once, and no 404 nor 405')
  t.not(calls()[0]?.callId, calls()[2]?.callId, 'calls numbered apart')
})

t.test('workers: a call no worker answered in time (504 workers_missing) is audited', async t => {
  const { cli, admin } = await startCluster(t, '  u: { targets: [ { url: "http://127.0.0.1:1" } ] }',
    '  - { name: a, match: { path: /a }, upstream: u, plugins: { slowp: {} } }',
    { loadPlugins: [join(dir, 'slowp.ts')], env: { PORTCULLIS_WORKER_QUERY_TIMEOUT_MS: '200', PORTCULLIS_PLUGIN_ADMIN_TIMEOUT_MS: '30000' } })
  const res = await request(`${admin}/plugins/slowp/purge`, { method: 'POST' })
  t.equal(res.statusCode, 504)
  t.match(await res.body.json(), { error: 'workers_missing' })
  t.match(await cli.waitForLine(l => l.msg === 'admin call', 5_000), { method: 'POST', path: '/plugins/slowp/purge', status: 504, error: 'workers_missing', callId: Number })
})
