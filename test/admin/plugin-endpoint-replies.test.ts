import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

const dir = t.testdir({
  'pp.ts': `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'pp',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    ctx.shared('admin', () => {
      ctx.admin.route('GET', '/retstr', () => 'hello' as any)
      ctx.admin.route('GET', '/retnum', async () => 42 as any)
      ctx.admin.route('GET', '/retbool', () => true as any)
      ctx.admin.route('GET', '/retarray', () => [{ status: 201 }] as any)
      ctx.admin.route('GET', '/allowed', () => ({ allowed: [], body: { ok: true } }))
    })
    return {}
  }
})
`
})

// A handler returning the body alone (`return 'hello'`) is the endpoint's failure, logged naming
// it, not an internal error of the admin API (`Cannot use 'in' operator...`).
t.test('a plugin admin endpoint replying what is not { status?, body? } is a 500 logged naming the endpoint', async t => {
  const gw = await startGateway(`loadPlugins: [./pp.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { pp: {} } }
`, { admin: true, file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const call = async (path: string) => {
    const res = await request(`${gw.adminUrl as string}/plugins/pp${path}`)
    return { status: res.statusCode, body: await res.body.text() }
  }
  const replied = { retstr: 'a string', retnum: 'a number', retbool: 'a boolean', retarray: 'an array' }
  for (const [path, what] of Object.entries(replied)) {
    t.same(await call(`/${path}`), { status: 500, body: JSON.stringify({ error: 'internal_error', message: 'the admin endpoint failed; see the gateway log' }) }, path)
    const message = `the plugin admin endpoint GET /plugins/pp/${path} replied ${what}, not { status?, body? }`
    t.ok(await until(() => gw.logs.some(l => l.msg === 'admin endpoint failed' && (l.err as { message?: unknown } | undefined)?.message === message)), `logged: ${message}`)
  }
  t.same(await call('/allowed'), { status: 200, body: '{"ok":true}' }, 'a reply\'s other fields are not read (an `allowed` is no list of methods)')
})
