import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { until } from '../helpers/wait.ts'

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
      ctx.admin.route('POST', '/status', req => ({ status: (req.body as { status: unknown }).status as number, body: { some: 'body' } }))
      ctx.admin.route('GET', '/text', () => ({ body: 'hello' }))
      ctx.admin.route('GET', '/bigint', () => ({ body: { n: 10n } }))
      ctx.admin.route('GET', '/frozen', () => { throw Object.freeze(Object.defineProperty(new Error('x'), 'message', { get () { throw new Error('no message') } })) })
      ctx.admin.route('GET', '/circular', () => {
        const body: Record<string, unknown> = {}
        body.self = body
        return { body }
      })
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
  t.match(JSON.parse(wrong.body), { message: 'POST is not allowed on /plugins/odd-admin/nothing (allowed: GET, HEAD)' })
})

t.test('a plugin admin reply the admin API cannot send is a 500; 204 and 304 go without body; strings are JSON; HEAD runs GET', async t => {
  const gw = await startGateway(`loadPlugins: [./odd-admin.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { odd-admin: {} } }
`, { admin: true, file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const call = async (method: 'GET' | 'POST' | 'HEAD', path: string, body?: unknown) => {
    const res = await request(`${gw.adminUrl as string}/plugins/odd-admin${path}`, body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
  }

  // A 1xx would announce another response; 0, 600, a fraction or no number are no status at all.
  for (const status of [100, 101, 0, 99, 600, 200.5, 'NaN', '201']) {
    const res = await call('POST', '/status', { status })
    t.equal(res.status, 500, `status ${JSON.stringify(status)}`)
    t.same(JSON.parse(res.body), { error: 'internal_error', message: 'the admin endpoint failed; see the gateway log' })
  }
  t.ok(gw.logs.some(l => l.level === 50 && String((l.err as { message?: string } | undefined)?.message).includes('/plugins/odd-admin/status replied status 101')), 'logged, naming the endpoint')
  t.same((await call('POST', '/status', { status: 599 })).status, 599)

  for (const status of [204, 304]) {
    const res = await call('POST', '/status', { status })
    t.same({ status: res.status, body: res.body }, { status, body: '' }, `${status}: the body given is dropped`)
    t.equal(res.headers['content-length'], undefined, `${status}: no Content-Length`)
  }

  for (const path of ['/bigint', '/circular', '/frozen']) {
    const res = await call('GET', path)
    t.equal(res.status, 500, path)
    t.same(JSON.parse(res.body), { error: 'internal_error', message: 'the admin endpoint failed; see the gateway log' })
  }

  const text = await call('GET', '/text')
  t.same({ status: text.status, body: text.body }, { status: 200, body: '"hello"' }, 'a string body is JSON, like every admin answer')
  t.match(text.headers['content-type'], /^application\/json/)

  const head = await call('HEAD', '/fine')
  t.same({ status: head.status, body: head.body }, { status: 200, body: '' }, 'HEAD answers as GET, without the body')
  t.equal(head.headers['content-length'], String('{"ok":true}'.length), 'the GET\'s Content-Length')
  t.match(head.headers['content-type'], /^application\/json/)
  const wrong = await call('POST', '/fine')
  t.equal(wrong.status, 405)
  t.equal(wrong.headers.allow, 'GET, HEAD', 'Allow lists HEAD beside GET')
  const headless = await call('HEAD', '/status')
  t.equal(headless.status, 405, 'no HEAD where there is no GET')
  t.equal(headless.headers.allow, 'POST')
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'admin endpoint failed').length >= 11), 'every failure logged')
  t.ok(gw.logs.some(l => l.msg === 'admin endpoint failed' && String((l.err as { message?: string } | undefined)?.message).includes('/plugins/odd-admin/frozen failed: [object Error]')),
    'a thrown value pino cannot serialize (frozen, its message a throwing getter) is logged too')
})
