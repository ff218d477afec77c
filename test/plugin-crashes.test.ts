import t, { type Test } from 'tap'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// What a JS plugin can do that once ended the process or spun it: a consistent-hash key header set
// to a number or null (a TypeError in the balancer, an unhandled rejection), a body stream putting
// out numbers (a write() that threw) or strings (counted in characters, not bytes), a stream
// passed twice (piped into itself: V8 aborted, or a loop at 100% CPU).
const ACCENTS = 'é'.repeat(1000) // 2000 bytes in UTF-8
const dir = t.testdir({})
sharedWithPlugins('Transform', Transform)
writeUserPlugin(dir, 'misuser', 100, `{
  onRequest (req) {
    const [, how, value] = req.path.split('/')
    const set = () => { if (value !== undefined) req.headers['x-tenant'] = value === 'null' ? null : value === 'array' ? [42] : 42 }
    if (how === 'body-twice') { const s = new (shared('Transform'))({ transform (c, _e, cb) { cb(null, c) } }); req.pipeBodyThrough(s); req.pipeBodyThrough(s) }
    if (how === 'async') return Promise.resolve().then(set)
    if (how === 'sync') set()
    return undefined
  },
  onResponse (res, req) {
    const Transform = shared('Transform')
    if (req.path === '/numbers-later') res.pipeThrough(new Transform({ readableObjectMode: true, transform (c, _e, cb) { setImmediate(cb, null, c.length) } }))
    if (req.path === '/numbers') res.pipeThrough(new Transform({ readableObjectMode: true, transform (c, _e, cb) { cb(null, c.length) } }))
    if (req.path === '/utf8') res.pipeThrough(new Transform({ encoding: 'utf8', transform (c, _e, cb) { cb(null, c) } }))
    if (req.path === '/twice') { const s = new Transform({ transform (c, _e, cb) { cb(null, c) } }); res.pipeThrough(s); res.pipeThrough(s) }
  }
}`)

const up = await startUpstream((req, res) => {
  if (req.url === '/utf8') { res.setHeader('content-type', 'text/plain; charset=utf-8'); res.end(ACCENTS); return }
  req.resume()
  req.on('end', () => res.end(`tenant ${String(req.headers['x-tenant'])}`))
})
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./misuser.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ], balance: consistent-hash, hashOn: { header: x-tenant } }
routes:
  - { name: r, match: { path: /* }, upstream: up, timeouts: { request: 5s }, plugins: { misuser: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

async function pluginError (t: Test, path: string, message: RegExp, method = 'GET'): Promise<void> {
  const res = await request(`${gw.url}${path}`, { method, body: method === 'POST' ? 'a body' : undefined, headersTimeout: 10_000, bodyTimeout: 10_000 })
  t.equal(res.statusCode, 500)
  const id = res.headers['x-request-id']
  t.same(await res.body.json(), { error: 'plugin_error', message: 'a plugin failed while handling the request', requestId: id })
  t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route: 'r', err: { message } })
  const next = await request(`${gw.url}/ok`)
  t.equal(await next.body.text(), 'tenant undefined', 'the gateway still serves')
}

t.test('consistent-hash: a key header a plugin set to what is not a string is no key', async t => {
  for (const how of ['async', 'sync']) {
    for (const value of ['42', 'null', 'array']) {
      for (const method of ['GET', 'POST']) { // a POST's small body is read first (readBody, then the pick)
        const res = await request(`${gw.url}/${how}/${value}`, { method, body: method === 'POST' ? 'a body' : undefined, headersTimeout: 10_000 })
        t.equal(res.statusCode, 200, `${how} ${value} ${method}`)
        await res.body.text()
      }
    }
  }
  t.notOk(gw.logs.some(l => l.msg === 'request failed in the gateway'))
})

t.test('a response body stream that puts out what is not bytes is the plugin\'s failure', async t => {
  await pluginError(t, '/numbers-later', /^a response body stream put out a number, not a Buffer or a string$/)
  await pluginError(t, '/numbers', /^a response body stream put out a number, not a Buffer or a string$/)
})

t.test('a response body stream that puts out strings is counted in UTF-8 bytes', async t => {
  const res = await request(`${gw.url}/utf8`, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-length'], String(Buffer.byteLength(ACCENTS)))
  t.equal(await res.body.text(), ACCENTS)
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: res.headers['x-request-id'] }), { status: 200, bytes: Buffer.byteLength(ACCENTS), error: undefined })
})

t.test('a stream passed twice is refused, in the hook that passes it', async t => {
  await pluginError(t, '/twice', /^pipeThrough was given a stream already in the body's chain/)
  await pluginError(t, '/body-twice', /^pipeBodyThrough was given a stream already in the body's chain/, 'POST')
})
