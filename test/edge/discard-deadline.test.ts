import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// The rest of a body left unread by an early answer is read to keep the connection: bounded in
// bytes (64 KiB), it was not in time. A client trickling a chunked body, a byte under each
// clientTimeouts.body, kept its connection for as long as it liked (Node's idle timer restarts
// with each byte): with clientTimeouts.body 1s it was still open 14 s on.

const up = await startUpstream()
t.teardown(() => up.close())
const gw = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 1s, minBodyRate: 500 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: gone, match: { path: /gone }, upstream: up, plugins: { request-termination: { status: 410 } } }
  - { name: all, match: { path: /* }, upstream: up }
`)
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** A connection that sends a chunked POST's head and then a 1-byte chunk every 300 ms, until closed. */
async function trickle (path: string): Promise<{ received: () => string, closed: () => boolean, stop: () => void }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let received = ''
  let closed = false
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.on('close', () => { closed = true })
  socket.write(`POST ${path} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n`)
  const timer = setInterval(() => { if (socket.writable) socket.write('1\r\na\r\n') }, 300)
  socket.once('close', () => clearInterval(timer))
  return { received: () => received, closed: () => closed, stop: () => { clearInterval(timer); socket.destroy() } }
}

t.test('a body trickled after an early answer is read for clientTimeouts.body at most, then the connection is ended', async t => {
  const client = await trickle('/gone')
  t.teardown(client.stop)
  t.ok(await until(() => /^HTTP\/1\.1 410 /.test(client.received())), 'answered at once')
  t.match(client.received(), /connection: keep-alive/i, 'its answer keeps the connection: the rest is small so far')
  // The deadline (1 s) ends it; the linger (2 s) would destroy it if the client kept its side open.
  t.ok(await until(() => client.closed(), 6_000), 'the connection is closed, bytes still coming')
  t.equal(client.received().match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer only')
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/gone'), { status: 410 })
})

t.test('a body whose rest comes in time keeps the connection for the next request', async t => {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.write('POST /gone HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n1\r\na\r\n')
  t.ok(await until(() => /^HTTP\/1\.1 410 /.test(received)), 'answered at once')
  socket.write('1\r\na\r\n0\r\n\r\nGET /next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
  await once(socket, 'close')
  t.same([...received.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map(m => Number(m[1])), [410, 200], 'the next request served on it')
})
