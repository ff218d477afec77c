import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// A JS plugin (no types to catch it) whose request body stream fails with a RequestRejected it
// built wrong. Once, the exchange threw inside undici's onError, which swallows it: the client had
// no answer, ever, and nothing was logged.
const dir = t.testdir({})
writeFileSync(join(dir, 'rejecter.mjs'), `
import { Transform } from 'node:stream'
import { definePlugin, RequestRejected, Type } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)}

const REJECTIONS = {
  // The reply first, the message left out: the constructor takes (message, reply).
  '/swapped': () => new RequestRejected({ status: 413, body: { error: 'too_big' } }),
  '/no-reply': () => new RequestRejected('too big'),
  // A reply that throws when the gateway copies it: the gateway's own failure path, still answered.
  '/throwing-headers': () => new RequestRejected('too big', { status: 413, get headers () { throw new Error('headers unreadable') } })
}

export default definePlugin({
  name: 'rejecter',
  priority: 500,
  schema: Type.Object({}),
  setup: () => ({
    onRequest (req) {
      const reject = REJECTIONS[req.path]
      req.pipeBodyThrough(new Transform({ transform (chunk, _enc, cb) { cb(reject()) } }))
      req.headers['content-length'] = undefined
    }
  })
})
`)

const up = await startUpstream((req, res) => { req.resume(); req.on('end', () => res.end('from the upstream')) })
t.teardown(() => up.close())
const gw = await startGateway(`
loadPlugins: [ ./rejecter.mjs ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { rejecter: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

/** POSTs to `path`: an answer, bounded (one that never comes fails the test rather than hang it). */
async function post (path: string) {
  return await request(`${gw.url}${path}`, { method: 'POST', body: 'a body', headersTimeout: 5_000 })
}

async function pluginError (t: Test, path: string): Promise<void> {
  const res = await post(path)
  t.equal(res.statusCode, 500)
  const id = res.headers['x-request-id']
  t.match(await res.body.json(), { error: 'plugin_error', requestId: id })
  t.match(await waitForLog(gw.logs, { msg: 'plugin failed', requestId: id }), {
    level: 50,
    route: 'r',
    plugin: 'rejecter',
    err: { type: 'TypeError', message: /^plugin rejecter refused the request body with a RequestRejected without a reply \{ status, headers\?, body\? \}: it takes \(message, reply\)$/ }
  })
}

t.test('a RequestRejected without a reply (arguments swapped, or left out) is the plugin\'s failure: 500 plugin_error, logged naming it', async t => {
  await pluginError(t, '/swapped')
  await pluginError(t, '/no-reply')
})

t.test('whatever else throws while a body stream\'s failure is answered ends the request: 500 internal_error, logged', async t => {
  const res = await post('/throwing-headers')
  t.equal(res.statusCode, 500)
  const id = res.headers['x-request-id']
  t.match(await res.body.json(), { error: 'internal_error', requestId: id })
  t.match(await waitForLog(gw.logs, { msg: 'request failed in the gateway', requestId: id }), { level: 50, route: 'r', err: { message: 'headers unreadable' } })
})

t.test('the gateway still serves', async t => {
  const res = await request(`${gw.url}/ok`)
  t.equal(res.statusCode, 200)
  await res.body.dump()
})
