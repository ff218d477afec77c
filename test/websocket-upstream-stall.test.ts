import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { catchAllYaml } from './helpers/catch-all.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { until } from './helpers/wait.ts'

/**
 * A WebSocket whose upstream stops reading (Exchange.onUpgrade): the gateway then stops reading the
 * client too, so the client's FIN or RST never reached it. The tunnel, its fds and its place in
 * flight stayed for ever, and a stop waited the whole shutdownTimeout (30 s). Now the upstream has
 * the route's timeouts.idle to take any of it, as nginx's proxy_send_timeout, and both ends are closed.
 */
const SLAB = Buffer.alloc(64 * 1024, 'c')
const UPGRADE = 'GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'

/**
 * An upstream that answers the upgrade with a 101 and then reads nothing, unless `reads` says how;
 * `resume()` has it read again (and see the gateway's end).
 */
async function stalledUpstream (t: Test, reads?: (socket: Socket) => void): Promise<{ url: string, closed: () => number, received: () => number, resume: () => void }> {
  const tunnels: Socket[] = []
  let closed = 0
  let received = 0
  const server = createServer((_req, res) => { res.end('plain') })
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    tunnels.push(socket)
    socket.on('error', () => {})
    socket.on('close', () => { closed++ })
    socket.on('end', () => socket.end())
    socket.on('data', (c: Buffer) => { received += c.length })
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')
    socket.pause()
    reads?.(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); for (const s of tunnels) s.destroy(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, closed: () => closed, received: () => received, resume: () => { for (const s of tunnels) s.resume() } }
}

/**
 * Every timeout at 1 s but the shutdown's (the default 30 s): a stop that waits for the tunnel shows.
 * `accepted`: the client connections on the gateway's side.
 */
async function gateway (t: Test, url: string): Promise<TestGateway & { accepted: Socket[] }> {
  const server = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { send: 1s, body: 1s }\n'
  const yaml = catchAllYaml(url, { server, route: '    timeouts: { request: 1s }\n' })
    .replace(`url: "${url}" } ] }`, `url: "${url}" } ], timeouts: { idle: 1s, response: 1s } }`)
  const gw = await startGateway(yaml)
  t.teardown(() => gw.close())
  const accepted: Socket[] = []
  gw.gateway.app.server.on('connection', (s: Socket) => accepted.push(s))
  return { ...gw, accepted }
}

/** Opens the tunnel on a raw socket and waits for the 101. */
async function openTunnel (t: Test, gw: TestGateway): Promise<Socket> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.write(UPGRADE)
  t.ok(await until(() => got.includes('\r\n\r\n')), 'the 101 came')
  t.match(got, /^HTTP\/1\.1 101 /)
  return socket
}

/** Writes for as long as the socket takes it. */
function flood (socket: Socket): void {
  const more = () => { while (!socket.destroyed && socket.write(SLAB)); }
  socket.on('drain', more)
  more()
}

/**
 * Whether the gateway has stopped reading `socket` (its side of the client's connection): paused by
 * the tunnel, its buffer full (Node then stops reading the connection, so a FIN or RST goes unseen).
 */
const unread = (socket: Socket | undefined): boolean => socket !== undefined && socket.isPaused() && socket.readableLength >= socket.readableHighWaterMark

for (const [how, leave] of [
  ['ends its side (FIN)', (s: Socket) => { s.destroy() }],
  ['resets its connection (RST)', (s: Socket) => { s.resetAndDestroy() }]
] as const) {
  t.test(`a client that ${how} while its upstream reads nothing: both ends closed after the upstream's idle timeout, logged`, { timeout: 15_000 }, async t => {
    const up = await stalledUpstream(t)
    const gw = await gateway(t, up.url)
    const client = await openTunnel(t, gw)
    flood(client)
    t.ok(await until(() => unread(gw.accepted[0])), 'the gateway reads the client no more')
    leave(client)
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }, 8_000), { status: 101, error: 'upstream_send' }, 'logged once closed, with the cut')
    t.match(gw.logs.find(l => l.msg === 'upstream request failed'), { err: { code: 'UPSTREAM_SEND_TIMEOUT' } }, 'the upstream named')
    t.equal(gw.gateway.runtime.inFlight, 0, 'nothing left in flight')
    t.ok(gw.accepted[0]?.destroyed, "the client's connection is closed")
    const start = performance.now()
    await gw.close()
    t.ok(performance.now() - start < 5_000, 'a stop does not wait for the tunnel')
    up.resume() // reads what the gateway sent, then its end
    t.ok(await until(() => up.closed() === 1), "the upstream's side is closed")
  })
}

t.test('an upstream that reads in bursts, each pause shorter than its idle timeout, is not cut', { timeout: 15_000 }, async t => {
  // Reads for 20 ms every 200 ms: five pauses to each of the 1 s idle timeout.
  const up = await stalledUpstream(t, socket => {
    const timer = setInterval(() => { socket.resume(); setTimeout(() => socket.pause(), 20) }, 200)
    socket.once('close', () => clearInterval(timer))
  })
  const gw = await gateway(t, up.url)
  const client = await openTunnel(t, gw)
  let closed = false
  client.on('close', () => { closed = true })
  flood(client)
  // For 2.5 s, twice the idle timeout: the wait asserts that nothing cuts the tunnel.
  await new Promise(resolve => setTimeout(resolve, 2_500))
  t.notOk(closed, 'still open')
  t.notOk(gw.logs.some(l => l.error === 'upstream_send'), 'not cut')
  t.ok(up.received() > 2 * 1024 * 1024, `the upstream read all along (${up.received()} bytes)`)
})
