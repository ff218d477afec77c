import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { deadPort, startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'

// req.extraResponseHeaders: set in the request phase, on whatever answers the request.
const dir = t.testdir({})
writeUserPlugin(dir, 'quota', 500, `{
  onRequest (req) {
    req.extraResponseHeaders['x-quota'] = '7'
    req.extraResponseHeaders['x-shared'] = 'from-request'
    req.extraResponseHeaders['x-skipped'] = undefined
  }
}`)
// Runs after quota in the request phase.
writeUserPlugin(dir, 'deny', 100, `{ onRequest: () => ({ status: 403, headers: { 'X-Shared': 'from-reply' }, body: { error: 'denied' } }) }`)
// Runs last in the response phase: what it sees is what the response had before the request phase's headers.
writeUserPlugin(dir, 'observe', 900, `{ onResponse (res) { res.headers['x-observed'] = String(res.headers['x-quota']) + ' ' + String(res.headers['x-shared']); res.headers['x-shared'] = 'from-response-phase' } }`)

const up = await startUpstream((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-shared': 'from-upstream', 'x-upstream': 'yes' })
  res.end('ok')
})
t.teardown(() => up.close())

const gw = await startGateway(`
loadPlugins: [ ./quota.ts, ./deny.ts, ./observe.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
  down: { targets: [ { url: "http://127.0.0.1:${await deadPort()}" } ] }
routes:
  - { name: upstream, match: { path: /upstream }, upstream: up, plugins: { quota: {} } }
  - { name: observed, match: { path: /observed }, upstream: up, plugins: { quota: {}, observe: {} } }
  - { name: reply, match: { path: /reply }, upstream: up, plugins: { quota: {}, deny: {} } }
  - { name: down, match: { path: /down }, upstream: down, plugins: { quota: {} } }
  - { name: plain, match: { path: /plain }, upstream: up }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

t.test("on the upstream's response, replacing its headers of the same name", async t => {
  const res = await request(`${gw.url}/upstream`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-quota'], '7')
  t.equal(res.headers['x-shared'], 'from-request', "the request phase's value, not the upstream's")
  t.equal(res.headers['x-upstream'], 'yes', "the upstream's other headers stay")
  t.notOk('x-skipped' in res.headers, 'an undefined value is not sent')
  t.equal(await res.body.text(), 'ok')
})

t.test('after every onResponse, which neither sees them nor overrides them', async t => {
  const res = await request(`${gw.url}/observed`)
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-observed'], 'undefined from-upstream')
  t.equal(res.headers['x-shared'], 'from-request')
  t.equal(res.headers['x-quota'], '7')
  await res.body.dump()
})

t.test("on a later plugin's reply, over its headers of the same name", async t => {
  const res = await request(`${gw.url}/reply`)
  t.equal(res.statusCode, 403)
  t.equal(res.headers['x-quota'], '7')
  t.equal(res.headers['x-shared'], 'from-request')
  t.same(await res.body.json(), { error: 'denied' })
})

t.test("on the gateway's 502 when the upstream is down", async t => {
  const res = await request(`${gw.url}/down`)
  t.equal(res.statusCode, 502)
  t.equal(res.headers['x-quota'], '7')
  t.match(await res.body.json(), { error: 'bad_gateway', requestId: res.headers['x-request-id'] })
})

t.test('never on another route, nor on the next request of the same connection', async t => {
  const first = await request(`${gw.url}/upstream`)
  await first.body.dump()
  const res = await request(`${gw.url}/plain`)
  t.equal(res.statusCode, 200)
  t.notOk('x-quota' in res.headers)
  t.equal(res.headers['x-shared'], 'from-upstream')
  await res.body.dump()
})
