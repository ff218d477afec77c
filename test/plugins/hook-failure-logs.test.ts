import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { waitForLog } from '../helpers/logs.ts'

// "plugin failed" lines named the route only: on a route of several plugins, which one failed was
// a guess, and for `throw null` the line said `err: null` and nothing more.
const dir = t.testdir({})
const plugins = [
  writeUserPlugin(dir, 'fine', 700, '{ onRequest () {}, onResponse () {} }'),
  writeUserPlugin(dir, 'null-request', 600, '{ onRequest () { throw null } }'),
  writeUserPlugin(dir, 'async-request', 600, "{ async onRequest () { await Promise.resolve(); throw new Error('lookup broke') } }"),
  writeUserPlugin(dir, 'string-response', 600, "{ onResponse () { throw 'no tenant' } }"),
  writeUserPlugin(dir, 'async-response', 600, '{ onResponse: () => Promise.reject(42) }'),
  // A consumer without groups: setting the identity headers for it fails, the fault of the plugin that set it.
  writeUserPlugin(dir, 'odd-consumer', 600, "{ onRequest (req) { req.consumer = { id: 'x' } } }")
]

t.test('a request or response hook that throws or rejects, whatever the value: logged naming the plugin', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const cases = [['null-request', { type: 'null', message: 'null' }], ['async-request', { message: 'lookup broke' }],
    ['string-response', { type: 'string', message: 'no tenant' }], ['async-response', { type: 'number', message: '42' }],
    ['odd-consumer', { message: /reading 'length'/ }]] as const
  const gw = await startGateway(`loadPlugins: ${JSON.stringify(plugins)}
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
${cases.map(([name]) => `  - { name: ${name}, match: { path: /${name} }, upstream: u, plugins: { fine: {}, ${name}: {} } }`).join('\n')}
`)
  t.teardown(() => gw.close())
  for (const [name, err] of cases) {
    const res = await request(`${gw.url}/${name}`)
    t.equal(res.statusCode, 500, name)
    const id = res.headers['x-request-id'] as string
    await res.body.dump()
    t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route: name, plugin: name, err }, name)
  }
})
