import t, { type Test } from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// What a JS plugin may hand the gateway that it cannot send. Each was once a crash (an async reply
// whose body JSON cannot serialize: an unhandled rejection), a 500 internal_error blaming the
// gateway, a response that never came, or a 204 claiming a body.
const dir = t.testdir({})
writeUserPlugin(dir, 'replier', 100, `{
  onRequest (req) {
    const [, how, kind] = req.path.split('/')
    const circular: any = {}
    circular.self = circular
    const replies: Record<string, unknown> = {
      circular: { status: 200, body: circular },
      bigint: { status: 200, body: { n: 1n } },
      'to-json': { status: 200, body: { toJSON () { throw new Error('no JSON') } } },
      null: null,
      number: 200,
      'status-101': { status: 101 },
      'status-100': { status: 100, body: 'x' },
      'no-status': { body: 'x' },
      '204': { status: 204, body: 'hello' },
      '204-length': { status: 204, headers: { 'Content-Length': '5' } },
      '304': { status: 304, headers: { etag: '"a"' }, body: { a: 1 } },
      '304-circular': { status: 304, body: circular },
      '304-length': { status: 304, headers: { 'content-length': '5' }, body: 'hello' },
      text: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hello' }
    }
    if (how === 'body-not-stream') req.pipeBodyThrough({})
    if (!(kind in replies)) return undefined
    return how === 'async' ? Promise.resolve(replies[kind]) : replies[kind]
  },
  onResponse (res, req) {
    if (req.path === '/not-stream') res.pipeThrough({})
    if (req.path === '/half-stream') res.pipeThrough({ on () {}, write () {}, end () {} })
    if (req.path === '/throwing-stream') {
      const stream: any = {}
      for (const m of ['once', 'off', 'write', 'end', 'pipe', 'pause', 'resume', 'destroy']) stream[m] = () => {}
      stream.on = () => { throw new Error('no listeners here') }
      res.pipeThrough(stream)
    }
  }
}`)

const up = await startUpstream((_req, res) => { res.end('from the upstream') })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./replier.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, timeouts: { request: 2s }, plugins: { replier: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** Checks a 500 plugin_error, logged as the plugin's failure with `message`; then that the gateway still serves. */
async function pluginError (t: Test, path: string, message: RegExp, method = 'GET'): Promise<void> {
  // Bounded: a response that never comes fails the test rather than hanging it.
  const res = await request(`${gw.url}${path}`, { method, body: method === 'POST' ? 'a body' : undefined, headersTimeout: 5_000 })
  t.equal(res.statusCode, 500)
  const id = res.headers['x-request-id']
  t.same(await res.body.json(), { error: 'plugin_error', message: 'a plugin failed while handling the request', requestId: id })
  t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), { level: 50, route: 'r', err: { message } })
  t.notOk(gw.logs.some(l => l.msg === 'request failed in the gateway'), 'not the gateway\'s failure')
  const next = await request(`${gw.url}/ok`)
  t.equal(await next.body.text(), 'from the upstream', 'the gateway still serves')
}

const UNUSABLE: Record<string, RegExp> = {
  circular: /^plugin replier replied with a body JSON cannot serialize: Converting circular structure/,
  bigint: /^plugin replier replied with a body JSON cannot serialize: .*BigInt/,
  'to-json': /^plugin replier replied with a body JSON cannot serialize: no JSON$/,
  null: /^plugin replier replied null, not a reply/,
  number: /^plugin replier replied number, not a reply/,
  'status-101': /^plugin replier replied with status 101: a reply's status is an integer from 200 to 999$/,
  'status-100': /^plugin replier replied with status 100/,
  'no-status': /^plugin replier replied with status undefined/
}
for (const how of ['sync', 'async']) {
  for (const [kind, message] of Object.entries(UNUSABLE)) {
    t.test(`a reply the gateway cannot send (${how}, ${kind}): 500 plugin_error naming the plugin`, t => pluginError(t, `/${how}/${kind}`, message))
  }
}

t.test('pipeThrough or pipeBodyThrough of what is not a stream: refused in the hook, answered 500 plugin_error, never a hang', async t => {
  await pluginError(t, '/not-stream', /^pipeThrough takes a Duplex stream \(a Transform, say\): this has no on\(\)$/)
  await pluginError(t, '/half-stream', /^pipeThrough takes a Duplex stream \(a Transform, say\): this has no once\(\)$/)
  await pluginError(t, '/body-not-stream/x', /^pipeBodyThrough takes a Duplex stream/, 'POST')
  // Stream-shaped, it fails as the gateway links it to the response: answered all the same.
  await pluginError(t, '/throwing-stream', /^no listeners here$/)
})

for (const how of ['sync', 'async']) {
  t.test(`a 204 or 304 reply (${how}) goes without body and Content-Length`, async t => {
    for (const kind of ['204', '204-length', '304', '304-circular', '304-length']) {
      const raw = await rawRequest(port, [`GET /${how}/${kind} HTTP/1.1`, 'host: x', 'connection: close'])
      t.equal(raw.status, Number(kind.slice(0, 3)), kind)
      t.same(headerValues(raw, 'content-length'), [], `${kind}: no Content-Length`)
      t.same(headerValues(raw, 'content-type'), [], `${kind}: no Content-Type for the body not sent`)
      t.equal(raw.body, '', `${kind}: no body`)
    }
    t.same(headerValues(await rawRequest(port, [`GET /${how}/304 HTTP/1.1`, 'host: x', 'connection: close']), 'etag'), ['"a"'], 'the 304\'s own headers stay')
    // undici refused the 204 that claimed 5 bytes (UND_ERR_RES_CONTENT_LENGTH_MISMATCH).
    const res = await request(`${gw.url}/${how}/204`)
    t.equal(res.statusCode, 204)
    t.equal(await res.body.text(), '')
  })
}

t.test('a HEAD answered by a reply with a body: its head, with the body\'s length, no body', async t => {
  const raw = await rawRequest(port, ['HEAD /sync/text HTTP/1.1', 'host: x', 'connection: close'])
  t.equal(raw.status, 200)
  t.same(headerValues(raw, 'content-length'), ['5'])
  t.equal(raw.body, '')
})
