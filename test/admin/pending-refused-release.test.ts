import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { ADMIN_LIMITS } from '../../src/server/admin-server.ts'
import { adminPort } from '../helpers/admin-port.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { until } from '../helpers/wait.ts'
import type { FileGateway } from '../reload/helpers.ts'
import { holdGateway } from './hold-gateway.ts'

/** Well under the 2 s a connection ended by the gateway may linger for a client that keeps its side open. */
const PROMPTLY_MS = 1_000

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
/** A request refused before its body is all in: the client is still sending it. */
const POST_UNFINISHED = 'POST /config/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{'

/** The admin listener's open connections, as last polled. */
function openOn (gw: FileGateway): { poll: () => void, count: () => number } {
  const server = gw.admin?.server
  if (server === undefined) throw new Error('no admin listener')
  let n = -1
  return { poll: () => server.getConnections((err, c) => { if (err === null) n = c }), count: () => n }
}

/**
 * `count` connections, once the listener holds them all (it is then full), each sending `text`; once
 * the gateway has ended each (their clients keep their side open): what each received.
 */
async function refusedBurst (t: Test, gw: FileGateway, port: number, count: number, text: string): Promise<{ sockets: Socket[], received: string[] }> {
  const sockets = Array.from({ length: count }, () => connect({ port, host: '127.0.0.1', allowHalfOpen: true }).on('error', () => {}))
  t.teardown(() => { for (const s of sockets) s.destroy() })
  const open = openOn(gw)
  // Idle, they are kept for the headers timeout: well past this wait.
  t.ok(await until(() => { open.poll(); return open.count() === ADMIN_LIMITS.maxConnections }, ADMIN_LIMITS.headersMs / 2), `the listener full (${ADMIN_LIMITS.maxConnections} connections)`)
  const received = sockets.map(socket => {
    let got = ''
    socket.setEncoding('latin1')
    socket.on('data', (c: string) => { got += c })
    socket.write(text)
    return new Promise<string>(resolve => socket.once('end', () => resolve(got)))
  })
  return { sockets, received: await Promise.all(received) }
}

/** Once the burst's clients close, the listener drops to `left` connections at once, and serves a new one. */
async function releasedPromptly (t: Test, gw: FileGateway, port: number, sockets: Socket[], left: number): Promise<void> {
  const open = openOn(gw)
  for (const s of sockets) s.end()
  t.ok(await until(() => { open.poll(); return open.count() === left }, PROMPTLY_MS), `the refused connections released at once (${open.count()} open)`)
  t.equal((await rawRequest(port, ['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])).status, 200, 'a new connection is served')
}

// 256 connections refused 429 while sending a body each held the listener's every slot for 2 s
// after their clients had closed: kept paused, their close was never read.
t.test('connections refused 429 as they send a body are released as soon as their clients close', async t => {
  const { gw, port } = await adminPort(t)
  const { sockets, received } = await refusedBurst(t, gw, port, ADMIN_LIMITS.maxConnections, get('/healthz').repeat(ADMIN_LIMITS.pipelined) + POST_UNFINISHED)
  t.ok(received.every(r => / 429 /.test(r) && /\r\nconnection: close\r\n/i.test(r)), 'each refused 429, its connection ended')
  await releasedPromptly(t, gw, port, sockets, 0)
})

t.test('connections refused 503 admin_busy as they send a body are released as soon as their clients close', async t => {
  const { gw, port, held } = await holdGateway(t)
  // The listener's bound on answers pending reached by 16 connections, each holding its 16.
  const holders = ADMIN_LIMITS.pending / ADMIN_LIMITS.pipelined
  const holding = Array.from({ length: holders }, () => {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write(get('/plugins/holdp/held').repeat(ADMIN_LIMITS.pipelined))
    return socket
  })
  t.teardown(() => { for (const s of holding) s.destroy() })
  t.ok(await until(() => held.calls === ADMIN_LIMITS.pending, 10_000), `${ADMIN_LIMITS.pending} answers pending`)

  // The rest of the listener's connections, each refused.
  const { sockets, received } = await refusedBurst(t, gw, port, ADMIN_LIMITS.maxConnections - holders, POST_UNFINISHED)
  t.ok(received.every(r => /^HTTP\/1\.1 503 .*"error":"admin_busy"/s.test(r)), 'each refused 503 admin_busy')
  await releasedPromptly(t, gw, port, sockets, holders)
})

// Read after its answer only to see the client's close: a request sent then is not run.
t.test('a request sent after the answer that ended its connection is not run: the connection is cut', async t => {
  const { port, held } = await holdGateway(t)
  const socket = connect(port, '127.0.0.1')
  socket.setEncoding('latin1')
  socket.on('error', () => {})
  let received = ''
  const closed = new Promise(resolve => socket.once('close', resolve))
  // A probe answered without its body: the rest of the body, then a request, sent once the answer is in.
  socket.once('data', () => { socket.write('x'.repeat(9) + get('/plugins/holdp/count')) })
  socket.on('data', (c: string) => { received += c })
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{')
  await closed
  t.match(received, /^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n/i, 'the probe answered, the connection ending')
  t.equal(received.match(/HTTP\/1\.1/g)?.length, 1, 'nothing answered after')
  t.equal(held.counted, 0, 'the request after it not run')
})
