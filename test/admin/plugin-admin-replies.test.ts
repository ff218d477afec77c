import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'

// Set before the server module loads: a handler that never answers is cut short in 300 ms, not 30 s.
process.env.PORTCULLIS_PLUGIN_ADMIN_TIMEOUT_MS = '300'
const { startGateway } = await import('../helpers/gateway.ts')

const dir = t.testdir({
  'odd-admin.ts': `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'odd-admin',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    ctx.shared('admin', () => {
      ctx.admin.route('GET', '/nothing', () => undefined)
      ctx.admin.route('POST', '/nothing-later', async () => null)
      ctx.admin.route('GET', '/never', () => new Promise(() => {}))
      ctx.admin.route('GET', '/fine', () => ({ body: { ok: true } }))
    })
    return {}
  }
})
`
})

t.test('a plugin admin handler that returns nothing is a 204, one that never settles a 504; a missing method is still a 405', async t => {
  const gw = await startGateway(`loadPlugins: [./odd-admin.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { odd-admin: {} } }
`, { admin: true, file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const call = async (method: 'GET' | 'POST', path: string) => {
    const res = await request(`${gw.adminUrl as string}/plugins/odd-admin${path}`, { method })
    return { status: res.statusCode, body: await res.body.text() }
  }
  t.same(await call('GET', '/nothing'), { status: 204, body: '' }, 'once a 405 saying GET is not allowed (allowed: GET)')
  t.same(await call('POST', '/nothing-later'), { status: 204, body: '' })
  t.same(await call('GET', '/fine'), { status: 200, body: '{"ok":true}' })
  const started = performance.now()
  const never = await call('GET', '/never')
  t.equal(never.status, 504)
  t.same(JSON.parse(never.body), { error: 'gateway_timeout', message: 'the plugin admin endpoint did not answer within 0.3 s' })
  t.ok(performance.now() - started < 5_000, 'answered at the timeout')
  const wrong = await call('POST', '/nothing')
  t.equal(wrong.status, 405)
  t.match(JSON.parse(wrong.body), { message: 'POST is not allowed on /plugins/odd-admin/nothing (allowed: GET)' })
})
