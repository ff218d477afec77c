import t, { type Test } from 'tap'
import { join } from 'node:path'
import { Duplex, Transform } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// A user plugin's body stream that throws from its transform (Node runs a request body stream's
// from the client request's 'data' event, a response body stream's from undici's onData), or
// that fails with a value `instanceof` throws on: the plugin's failure, 500 plugin_error (cut
// once the head is out), logged; never the end of the process, nor the upstream's 502.
const revoked = (): unknown => { const { proxy, revoke } = Proxy.revocable(new Error('revoked'), {}); revoke(); return proxy }
const trap = (): unknown => new Proxy(new Error('proxied'), { getPrototypeOf () { throw new Error('no prototype') } })
const THROWN: Record<string, () => unknown> = { error: () => new Error('transform threw'), string: () => 'a string', revoked, trap }
sharedWithPlugins('throwing', (how: string, kind: string, after = 0): Duplex => {
  const value = THROWN[kind] ?? (() => undefined)
  let seen = 0
  // A Duplex whose _read throws (Node calls it from a nextTick, once the stream is read).
  if (how === 'read') return new Duplex({ write (_c, _e, cb) { cb() }, read () { throw value() } })
  return new Transform({
    transform (c: Buffer, _e, cb) {
      seen += c.length
      if (seen <= after) cb(null, c)
      else if (how === 'throw') throw value()
      else if (how === 'later') setImmediate(cb, value() as Error)
      else cb(value() as Error)
    }
  })
})
const dir = t.testdir({})
writeUserPlugin(dir, 'thrower', 100, `{
  onRequest (req) {
    const [, side, how, kind] = req.path.split('/')
    if (side === 'request') req.pipeBodyThrough(shared('throwing')(how, kind))
  },
  onResponse (res, req) {
    const [, side, how, kind, after] = req.path.split('/')
    if (side === 'response') res.pipeThrough(shared('throwing')(how, kind, Number(after ?? 0)))
  }
}`)

const up = await startUpstream((req, res) => {
  req.resume()
  req.on('end', () => {
    if (req.url?.endsWith('/late')) { res.write('x'.repeat(1000)); setTimeout(() => res.end('y'.repeat(1000)), 50); return }
    res.end('from the upstream')
  })
})
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./thrower.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { thrower: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

async function stillServes (t: Test): Promise<void> {
  const res = await request(`${gw.url}/fine`, { headersTimeout: 10_000, bodyTimeout: 10_000 })
  t.equal(await res.body.text(), 'from the upstream', 'the gateway still serves')
  t.same(gw.gateway.runtime.upstreams.get('up')!.snapshot().targets[0]?.down, [], 'the target is not blamed')
}

async function pluginError (t: Test, path: string, method: string): Promise<void> {
  const res = await request(`${gw.url}${path}`, { method, body: method === 'POST' ? 'a body to go through' : undefined, headersTimeout: 10_000, bodyTimeout: 10_000 })
  t.equal(res.statusCode, 500, path)
  const id = res.headers['x-request-id']
  t.match(await res.body.json(), { error: 'plugin_error', requestId: id }, path)
  t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route: 'r', err: { message: /\w/ } }, path)
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: id }), { status: 500 }, path)
}

t.test('a request body stream that throws, any value: 500 plugin_error, the gateway lives', async t => {
  for (const kind of Object.keys(THROWN)) await pluginError(t, `/request/throw/${kind}`, 'POST')
  await pluginError(t, '/request/read/error', 'POST')
  await stillServes(t)
})

t.test('a request body stream failing with a revoked Proxy (Node throws reading it), now or later: 500 plugin_error', async t => {
  await pluginError(t, '/request/fail/revoked', 'POST')
  await pluginError(t, '/request/later/revoked', 'POST')
  await stillServes(t)
})

t.test('a request body stream failing with a value instanceof throws on: as any failure of it, 400 bad_body', async t => {
  const res = await request(`${gw.url}/request/fail/trap`, { method: 'POST', body: 'a body', headersTimeout: 10_000, bodyTimeout: 10_000 })
  t.equal(res.statusCode, 400)
  t.match(await res.body.json(), { error: 'bad_body' })
  await stillServes(t)
})

t.test('a response body stream that throws, or fails with any value: 500 plugin_error, not the upstream\'s 502', async t => {
  for (const how of ['throw', 'fail', 'later']) for (const kind of Object.keys(THROWN)) await pluginError(t, `/response/${how}/${kind}`, 'GET')
  await pluginError(t, '/response/read/error', 'GET')
  await stillServes(t)
})

t.test('past the head, a response body stream that throws cuts the response, logged plugin_failed', async t => {
  for (const kind of Object.keys(THROWN)) {
    const res = await request(`${gw.url}/response/throw/${kind}/1500/late`, { headersTimeout: 10_000, bodyTimeout: 10_000 })
    t.equal(res.statusCode, 200)
    const id = res.headers['x-request-id']
    await t.rejects(res.body.text(), kind)
    t.match(await waitForLog(gw.logs, { msg: 'request', requestId: id }), { status: 200, error: 'plugin_failed' }, kind)
    t.ok(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), kind)
  }
  await stillServes(t)
})
