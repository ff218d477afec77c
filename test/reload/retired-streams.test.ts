import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { request } from 'undici'
import type { Runtime } from '../../src/runtime/runtime.ts'
import { until } from '../helpers/wait.ts'
import { configFile, startFromFile } from './helpers.ts'

// server.reloadTunnelTimeout cuts what a replaced config still relays, not only its WebSockets: an
// SSE stream opened with a key the reload revoked kept streaming that consumer's data, and holding
// the old config, for as long as the client stayed; a request still waiting on its upstream would begin one.

const ALICE = 'alice-key-0123456789abcdef'
const BOB = 'bob-key-0123456789abcdefgh'

/**
 * /events: an endless event stream naming its consumer; /slow: never answered; /held: /events once
 * release() is called. `closed`: the paths whose client side the upstream saw close.
 */
async function streamServer (t: Test): Promise<{ url: string, closed: string[], release: () => void }> {
  const closed: string[] = []
  const held: Array<() => void> = []
  const server = createServer((req: IncomingMessage, res) => {
    res.on('close', () => closed.push(`${req.url} ${req.headers['x-consumer-id']}`))
    if (req.url === '/slow') return
    const stream = () => {
      if (res.destroyed) return
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      let i = 0
      const timer = setInterval(() => res.write(`data: ${req.headers['x-consumer-id']} ${i++}\n\n`), 50)
      res.on('close', () => clearInterval(timer))
    }
    if (req.url === '/held') held.push(stream); else stream()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, closed, release: () => { for (const s of held.splice(0)) s() } }
}

const yaml = (url: string, consumers: string[], server: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
${server}
consumers:
${consumers.map(id => `  - { id: ${id}, credentials: { key-auth: { keys: ["${id === 'alice' ? ALICE : BOB}"] } } }`).join('\n')}
upstreams:
  up: { targets: [ { url: "${url}" } ] }
routes:
  - { name: live, match: { path: /* }, upstream: up, plugins: { key-auth: {} } }
`

/** A stream of `key`'s: counts what comes, and when it ended (or failed). */
async function openStream (url: string, key: string) {
  const res = await request(`${url}/events`, { headers: { 'x-api-key': key } })
  const s = { events: 0, endedAt: 0, failed: false }
  res.body.on('data', () => { s.events++ })
  res.body.on('error', () => { s.failed = true; s.endedAt = performance.now() })
  res.body.on('end', () => { s.endedAt = performance.now() })
  return { status: res.statusCode, s, destroy: () => res.body.destroy() }
}

async function setup (t: Test, server: string) {
  const up = await streamServer(t)
  const cf = await configFile(yaml(up.url, ['alice', 'bob'], server))
  const gw = await startFromFile(cf.file)
  const streams: Array<() => void> = []
  t.teardown(async () => { for (const d of streams) d(); await gw.close(); await cf.remove() })
  const open = async (key: string) => { const st = await openStream(gw.url, key); streams.push(st.destroy); return st }
  const revokeAlice = async (): Promise<{ retired: Runtime, at: number }> => {
    const retired = gw.gateway.runtime
    await cf.write(yaml(up.url, ['bob'], server))
    const at = performance.now()
    t.equal((await gw.reloader.reload('admin')).result, 'success')
    return { retired, at }
  }
  return { gw, up, open, revokeAlice }
}

t.test('with server.reloadTunnelTimeout, a stream and a request waiting on the replaced config are cut that long after the reload', async t => {
  const { gw, up, open, revokeAlice } = await setup(t, '  reloadTunnelTimeout: 300ms')
  const alice = await open(ALICE)
  t.equal(alice.status, 200)
  t.ok(await until(() => alice.s.events > 0), 'alice\'s stream flows')
  const waiting = request(`${gw.url}/slow`, { headers: { 'x-api-key': ALICE } })
  waiting.catch(() => {})
  t.ok(await until(() => gw.gateway.runtime.inFlight === 2), 'her request waits on the upstream')
  const { retired, at } = await revokeAlice()
  const bob = await open(BOB)

  t.ok(await until(() => alice.s.endedAt > 0, 5_000), 'alice\'s stream is cut')
  t.ok(alice.s.failed, 'as cut, not as ended whole')
  const after = alice.s.endedAt - at
  t.ok(after >= 290 && after < 2_000, `${Math.round(after)} ms after the reload`)
  await t.rejects(waiting, 'her waiting request is cut too')
  t.ok(await until(() => up.closed.includes('/events alice') && up.closed.includes('/slow alice')), 'and both are ended upstream')
  const events = alice.s.events
  t.ok(await until(() => retired.inFlight === 0 && !gw.gateway.retiring.includes(retired)), 'the replaced config is released')

  const lines = gw.logs.filter(l => l.msg === 'request' && l.consumer === 'alice')
  t.match(lines.find(l => l.path === '/events'), { route: 'live', status: 200, error: 'reload' }, 'the stream is logged with the status sent, cut by the reload')
  t.match(lines.find(l => l.path === '/slow'), { route: 'live', status: 503, error: 'reload' }, 'the waiting request as cut before anything was sent')
  t.ok(gw.logs.some(l => l.msg === 'requests still in flight on a replaced config cut (server.reloadTunnelTimeout)' && l.requests === 2), 'and why')

  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(alice.s.events, events, 'nothing more of alice\'s reaches her')
  t.equal(bob.s.endedAt, 0, 'the stream opened on the new config is untouched')
  const before = bob.s.events
  t.ok(await until(() => bob.s.events > before), 'and flows')
})

t.test('with it, an upgrade unanswered at the cut whose upstream then answers with a stream (no 101) is cut as that answer comes', async t => {
  const { gw, up, revokeAlice } = await setup(t, '  reloadTunnelTimeout: 300ms')
  // Alice's key, revoked, would keep a stream by adding Upgrade to its request: its upstream ignores it.
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  let received = ''
  let closed = false
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.once('close', () => { closed = true })
  socket.write(`GET /held HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nx-api-key: ${ALICE}\r\n\r\n`)
  // A request of hers that waits too: its cut says the limit has passed.
  request(`${gw.url}/slow`, { headers: { 'x-api-key': ALICE } }).catch(() => {})
  t.ok(await until(() => gw.gateway.runtime.inFlight === 2), 'both wait on the upstream')
  const { retired } = await revokeAlice()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'requests still in flight on a replaced config cut (server.reloadTunnelTimeout)')), 'the limit passes')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/slow')), 'her request cut')
  t.equal(retired.inFlight, 1, 'the upgrade, left to see whether it switches')
  up.release()
  t.ok(await until(() => closed), 'its stream is cut as it comes')
  t.equal(received, '', 'none of it sent')
  t.ok(await until(() => up.closed.includes('/held alice')), 'and it is ended upstream')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/held')))
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/held'), { consumer: 'alice', status: 503, error: 'reload' })
  t.ok(await until(() => retired.inFlight === 0 && !gw.gateway.retiring.includes(retired)), 'the replaced config is released')
})

t.test('without it, the stream goes on', async t => {
  const { gw, open, revokeAlice } = await setup(t, '')
  const alice = await open(ALICE)
  const { retired } = await revokeAlice()
  await new Promise(resolve => setTimeout(resolve, 500))
  const before = alice.s.events
  t.ok(await until(() => alice.s.events > before), 'the revoked key\'s stream still flows')
  t.equal(retired.inFlight, 1, 'and holds the replaced config')
  t.ok(gw.gateway.retiring.includes(retired))
})
