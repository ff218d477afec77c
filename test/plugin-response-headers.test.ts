import t from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
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

// A 101 of the tunnel upstream's own (an upgrade to `foo`), which then holds the connection.
writeUserPlugin(dir, 'bad', 500, `{ onRequest (req) { req.extraResponseHeaders['x-bad'] = 'a\\r\\nx-injected: yes' } }`)
const tunnelUp = createServer()
tunnelUp.on('upgrade', (_req, socket: Socket) => {
  socket.on('error', () => {})
  socket.on('end', () => socket.end()) // the client's end closes the tunnel
  socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\nx-shared: from-upstream\r\n\r\n')
})
await new Promise<void>(resolve => tunnelUp.listen(0, '127.0.0.1', resolve))
t.teardown(() => { tunnelUp.closeAllConnections(); tunnelUp.close() })

const gw = await startGateway(`
loadPlugins: [ ./quota.ts, ./deny.ts, ./observe.ts, ./bad.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
  tunnel: { targets: [ { url: "http://127.0.0.1:${(tunnelUp.address() as AddressInfo).port}" } ] }
  down: { targets: [ { url: "http://127.0.0.1:${await deadPort()}" } ] }
routes:
  - { name: upstream, match: { path: /upstream }, upstream: up, plugins: { quota: {} } }
  - { name: observed, match: { path: /observed }, upstream: up, plugins: { quota: {}, observe: {} } }
  - { name: reply, match: { path: /reply }, upstream: up, plugins: { quota: {}, deny: {} } }
  - { name: down, match: { path: /down }, upstream: down, plugins: { quota: {} } }
  - { name: plain, match: { path: /plain }, upstream: up }
  - { name: tunnel, match: { path: /tunnel }, upstream: tunnel, upgrade: [foo], plugins: { quota: {}, observe: {} } }
  - { name: bad-tunnel, match: { path: /bad-tunnel }, upstream: tunnel, upgrade: [foo], plugins: { bad: {} } }
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

/** The head of the answer to an upgrade request to `path` (a 101 keeps the connection: read up to the blank line). */
async function upgradeHead (path: string): Promise<string[]> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n`)
  await new Promise<void>((resolve, reject) => {
    socket.on('data', () => { if (got.includes('\r\n\r\n')) resolve() })
    socket.on('error', reject)
  })
  socket.destroy()
  return got.slice(0, got.indexOf('\r\n\r\n')).split('\r\n')
}

t.test("on an upgrade's 101, replacing the upstream's headers of the same name; no response hook runs", async t => {
  const lines = await upgradeHead('/tunnel')
  t.equal(lines[0], 'HTTP/1.1 101 Switching Protocols')
  t.ok(lines.includes('x-quota: 7'))
  t.ok(lines.includes('x-shared: from-request'), "the request phase's value, not the upstream's")
  t.notOk(lines.some(l => l.startsWith('x-shared: from-upstream')))
  t.notOk(lines.some(l => l.startsWith('x-observed') || l.startsWith('x-skipped')))
})

t.test('a value that cannot be written on the 101 is the plugin\'s failure, never written', async t => {
  const lines = await upgradeHead('/bad-tunnel')
  t.equal(lines[0], 'HTTP/1.1 500 Internal Server Error')
  t.notOk(lines.some(l => l.startsWith('x-injected')))
})
