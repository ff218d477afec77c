import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { catchAllYaml } from './helpers/catch-all.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { metricValue } from './helpers/metric-value.ts'
import { until } from './helpers/wait.ts'

/**
 * A client that ends its side (FIN) once the head of an upstream's non-101 answer to its upgrade is
 * out: gone, as on plain HTTP, after a linger in which an answer that ends still reaches it.
 */

const UPGRADE = 'GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n'

/** An upstream answering every upgrade 200, chunked, with one chunk, then nothing until `finish()`; `closed()`: its connections closed. */
async function streamingUpstream (t: Test): Promise<{ url: string, sockets: Socket[], closed: () => number, finish: () => void }> {
  const sockets: Socket[] = []
  let closed = 0
  const server = createServer()
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    sockets.push(socket)
    socket.on('error', () => {})
    socket.on('close', () => { closed++ })
    socket.on('end', () => socket.end()) // the gateway's end closes the connection
    socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sockets,
    closed: () => closed,
    finish: () => { for (const s of sockets) s.end('5\r\nworld\r\n0\r\n\r\n') }
  }
}

/** The gateway (with an admin listener), and the client sockets its upgrades were handed. */
async function gateway (t: Test, url: string): Promise<{ gw: TestGateway, held: Duplex[] }> {
  const gw = await startGateway(catchAllYaml(url, { route: '    upgrade: [foo]\n' }), { admin: true })
  t.teardown(() => gw.close())
  const held: Duplex[] = []
  gw.gateway.app.server.prependListener('upgrade', (_req: IncomingMessage, socket: Duplex) => { held.push(socket) })
  return { gw, held }
}

/** A raw client that has sent the upgrade and read the answer's first chunk. */
async function clientReading (t: Test, gw: TestGateway): Promise<{ socket: Socket, got: () => string, closed: () => boolean }> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.allowHalfOpen = true // reads on after its own end, as a half-closing client does
  socket.on('error', () => {})
  let got = ''
  let closed = false
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.on('close', () => { closed = true })
  socket.write(UPGRADE)
  t.ok(await until(() => got.includes('hello')), 'the head and the first chunk came')
  t.match(got, /^HTTP\/1\.1 200 /)
  return { socket, got: () => got, closed: () => closed }
}

t.test("a client that ends its side while an upstream's non-101 answer streams, then stalls: logged 499, the upstream's request aborted", async t => {
  const up = await streamingUpstream(t)
  const { gw } = await gateway(t, up.url)
  const c = await clientReading(t, gw)
  c.socket.end()
  // Past the linger (2 s), well short of the upstream's timeouts.idle (60 s).
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }, 10_000), { status: 499, error: undefined })
  t.ok(await until(() => up.closed() === 1), "the upstream's connection is closed")
  t.ok(await until(() => c.closed()), "the client's connection is closed")
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_in_flight'), 0, 'nothing in flight')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="all",method="GET",status="499"}'), 1)
  t.notOk(gw.logs.some(l => l.msg === 'upstream request failed'), 'the target is not blamed')
  t.match(gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0], { inFlight: 0, connections: { busy: 0 } }, 'nor held')
})

t.test('a client that ends its side while the answer streams, which then ends within the linger: the client reads it whole', async t => {
  const up = await streamingUpstream(t)
  const { gw, held } = await gateway(t, up.url)
  const c = await clientReading(t, gw)
  c.socket.end()
  t.ok(await until(() => held[0]?.readableEnded === true), 'the gateway read the end')
  up.finish()
  t.ok(await until(() => c.closed(), 10_000), 'the connection closed')
  t.match(c.got(), /hello\r\n5\r\nworld\r\n0\r\n\r\n$/, 'the whole answer')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 200, error: undefined })
})
