import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { pluginEvents, writeTracerPlugin } from './helpers/tracer-plugin.ts'

const dir = t.testdir({})
for (const [name, priority] of [['p300', 300], ['p200', 200], ['p100', 100]] as const) writeTracerPlugin(dir, name, priority)

const hits: string[] = []
const up = await startUpstream((req, res) => {
  hits.push(req.url as string)
  const body = `hello from ${req.url}`
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'x-upstream-saw': String(req.headers['x-trace']) })
  res.end(body)
})
t.teardown(() => up.close())

const ROUTES: Record<string, string> = {
  // Listed out of priority order on purpose.
  order: '{ p100: {}, p300: {}, p200: { async: true } }',
  short: '{ p100: {}, p200: { reply: 401 }, p300: { async: true } }',
  'fail-request': '{ p100: {}, p200: { fail: request }, p300: {} }',
  'fail-response': '{ p100: {}, p200: { fail: response }, p300: {} }',
  'fail-async-request': '{ p200: { fail: request, async: true } }',
  'fail-async-response': '{ p200: { fail: response, async: true } }',
  'bad-header': '{ p200: { badHeader: true } }',
  'bad-header-async': '{ p200: { badHeader: true, async: true } }',
  'bad-header-reply': '{ p100: { reply: 403 }, p200: { badHeader: true, async: true } }',
  'bad-header-reply-sync': '{ p100: { reply: 403 }, p200: { badHeader: true } }',
  upper: '{ p100: { upper: true } }',
  'fail-stream': '{ p200: { fail: stream } }',
  'fail-stream-start': '{ p200: { fail: stream-start } }',
  'bad-header-stream': '{ p100: { upper: true }, p200: { badHeader: true } }',
  'bad-request-header': '{ p200: { badRequestHeader: true } }'
}
const gw = await startGateway(`
loadPlugins: [ ./p300.ts, ./p200.ts, ./p100.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${Object.entries(ROUTES).map(([name, plugins]) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: ${plugins} }`).join('\n')}
`, { file: join(dir, 'gateway.yaml') })
let closed = false
t.teardown(async () => { if (!closed) await gw.close() })

t.test('request phase in priority order, response phase reversed, async hooks in both', async t => {
  const res = await request(`${gw.url}/order`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-upstream-saw'], 'p300,p200,p100', 'request hooks ran highest priority first')
  t.equal(res.headers['x-trace'], 'p100,p200,p300', 'response hooks ran in reverse')
  t.equal(await res.body.text(), 'hello from /order')
})

t.test('a HEAD through async response hooks gets the upstream\'s head and the hooks\' headers', async t => {
  // undici ends a HEAD's response with its head: the gateway still writes the head first, then ends.
  const res = await request(`${gw.url}/order`, { method: 'HEAD' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(Buffer.byteLength('hello from /order')))
  t.equal(res.headers['x-trace'], 'p100,p200,p300')
  t.equal(res.headers['content-type'], 'text/plain')
  t.equal(await res.body.text(), '')
})

t.test('a short-circuit reply skips the upstream and inner plugins; outer onResponse still runs', async t => {
  const before = hits.length
  const res = await request(`${gw.url}/short`)
  t.equal(res.statusCode, 401)
  t.equal(res.headers['content-type'], 'application/problem+json', "the plugin's own Content-Type, whatever its case")
  t.same(await res.body.json(), { error: 'denied' })
  t.equal(hits.length, before, 'the upstream was not called')
  t.equal(res.headers['x-seen'], 'p300,p200', 'the inner plugin (p100) did not see the request')
  t.equal(res.headers['x-trace'], 'p300', 'only the outer plugin\'s onResponse ran (async)')
  t.ok(res.headers['x-request-id'], 'request id echoed')
})

const FAILURES: Record<string, RegExp> = {
  'fail-request': /p200 failed on request/,
  'fail-response': /p200 failed on response/,
  'fail-async-request': /p200 failed on request/,
  'fail-async-response': /p200 failed on response/,
  // The plugin's mistake surfaces when the gateway writes the response head.
  'bad-header': /Invalid character in header content/,
  'bad-header-async': /Invalid character in header content/,
  'bad-header-reply': /Invalid character in header content/,
  'bad-header-reply-sync': /Invalid character in header content/,
  // Before its first byte, a body stream's failure is answered: nothing has gone out yet.
  'fail-stream-start': /p200 failed at its first chunk/,
  'bad-header-stream': /Invalid character in header content/,
  // undici refuses to send it: the plugin's doing, not the target's.
  'bad-request-header': /invalid x-bad header/
}
for (const [route, message] of Object.entries(FAILURES)) {
  t.test(`a plugin failing (${route}) gives 500 plugin_error and the gateway keeps serving`, async t => {
    const res = await request(`${gw.url}/${route}`)
    t.equal(res.statusCode, 500)
    const id = res.headers['x-request-id']
    t.same(await res.body.json(), { error: 'plugin_error', message: 'a plugin failed while handling the request', requestId: id })
    t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route, err: { message } })
    t.notOk(gw.logs.some(l => l.msg === 'upstream request failed' && l.requestId === id), 'not reported as an upstream failure')
    const next = await request(`${gw.url}/order`)
    t.equal(next.statusCode, 200, 'next request served')
    await next.body.dump()
  })
}

t.test('requests a plugin made unsendable never count against the target: it is not ejected', async t => {
  const before = hits.length
  for (let i = 0; i < 12; i++) t.equal((await request(`${gw.url}/bad-request-header`)).statusCode, 500)
  t.equal(hits.length, before, 'nothing reached the upstream')
  const next = await request(`${gw.url}/order`)
  t.equal(next.statusCode, 200, 'the target still serves')
  await next.body.dump()
})

t.test('pipeThrough changes the streamed body', async t => {
  const res = await request(`${gw.url}/upper`)
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'HELLO FROM /UPPER')
  t.equal(res.headers['content-length'], undefined, 'length dropped by the plugin')
})

t.test('a body stream failing mid-body cuts the response, logged as the plugin\'s failure, not as a client gone', async t => {
  const res = await request(`${gw.url}/fail-stream`)
  t.equal(res.statusCode, 200, 'the head was sent')
  const id = res.headers['x-request-id']
  await t.rejects(res.body.text(), 'the body is cut short')
  t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route: 'fail-stream', err: { message: 'p200 failed in its body stream' } })
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: id }), { status: 200, error: 'plugin_failed' })
})

t.test('setup runs once per route at load, dispose once at close', async t => {
  const setups = () => pluginEvents().filter(e => e.startsWith('setup ')).sort()
  const atLoad = setups()
  const expected = Object.entries(ROUTES).flatMap(([route, plugins]) =>
    ['p100', 'p200', 'p300'].filter(p => plugins.includes(`${p}:`)).map(p => `setup ${p} ${route}`)).sort()
  t.same(atLoad, expected, 'one setup per plugin per route')
  for (let i = 0; i < 20; i++) await (await request(`${gw.url}/${i % 2 === 0 ? 'order' : 'short'}`)).body.dump()
  t.same(setups(), atLoad, 'no setup per request')

  closed = true
  await Promise.all([gw.close(), gw.close()]) // as SIGTERM then SIGINT would
  const disposed = pluginEvents().filter(e => e.startsWith('dispose ')).map(e => e.replace('dispose', 'setup')).sort()
  t.same(disposed, expected, 'every set-up plugin disposed once when the gateway closed, even if closed twice')
})

t.test('handlers may be class instances: hooks run with `this` bound to them', async t => {
  const index = new URL('../src/index.ts', import.meta.url).href
  writeFileSync(join(dir, 'stamp.ts'), `
import { definePlugin, Type } from ${JSON.stringify(index)}
class Stamp {
  readonly value: string
  constructor (value: string) { this.value = value }
  onRequest (req: { headers: Record<string, unknown> }) { req.headers['x-stamp'] = this.value }
  onResponse (res: { headers: Record<string, unknown> }) { res.headers['x-stamp'] = this.value }
}
export default definePlugin({
  name: 'stamp', priority: 10, schema: Type.Object({ value: Type.String() }),
  setup: config => new Stamp(config.value)
})
`)
  const own = await startGateway(`
loadPlugins: [ ./stamp.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: stamped, match: { path: /stamped }, upstream: up, plugins: { stamp: { value: acme } } }
`, { file: join(dir, 'stamp.yaml') })
  t.teardown(() => own.close())
  const res = await request(`${own.url}/stamped`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-stamp'], 'acme', 'the response hook saw its instance')
  await res.body.dump()
  t.equal(hits.at(-1), '/stamped')
})
