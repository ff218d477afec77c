import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startH2Gateway } from '../helpers/http2.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

// The route's request timeout, fired while the client has yet to send the rest of its body, is the
// client's delay (nginx's client_body_timeout): a 408 that closes the connection, counted as a client
// body timeout, not a 504 counted `request` (a 5xx that paged on two stalled uploads). Waiting on
// the upstream (a body it does not take, a slow answer) it stays a 504.

/** The body starts, then stalls: 10 bytes of the declared `length`. */
const STALLED = (length: number) => `POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: ${length}\r\n\r\n${'a'.repeat(10)}`

async function gateway (t: Test, answer: (req: IncomingMessage, res: ServerResponse) => void, request = '2s'): Promise<{ gw: TestGateway, heads: () => number }> {
  let heads = 0
  const up = await startUpstream((req, res) => { heads++; answer(req, res) })
  t.teardown(() => up.close())
  // No client body timeout of the server's own: only the route's request timeout can fire.
  const server = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { body: 0s }\n'
  const gw = await startGateway(catchAllYaml(up.url, { server, route: `    timeouts: { request: ${request} }` }))
  t.teardown(() => gw.close())
  return { gw, heads: () => heads }
}

/** Sends `text` on a new connection and reads until the gateway ends it. */
async function sendAndRead (gw: TestGateway, text: string): Promise<string> {
  const socket: Socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write(text)
  await once(socket, 'close')
  return Buffer.concat(chunks).toString('latin1')
}

const metric = async (gw: TestGateway, series: string): Promise<number> => {
  const line = (await gw.metrics.registry.metrics()).split('\n').find(l => l.startsWith(series + ' '))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

function is408 (t: Test, answer: string): void {
  t.match(answer, /^HTTP\/1\.1 408 /, '408')
  t.match(answer, /\r\nconnection: close\r\n/i, 'the connection closes: the rest of the body is never read')
  t.match(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), { error: 'request_timeout' })
}

async function countedAsClient (t: Test, gw: TestGateway): Promise<void> {
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/upload' }), { status: 408, error: 'client_body_timeout' })
  t.equal(await metric(gw, 'portcullis_timeouts_total{kind="client_body_timeout"}'), 1, 'a client body timeout')
  t.equal(await metric(gw, 'portcullis_timeouts_total{kind="request"}'), 0, 'no request timeout')
  t.equal(await metric(gw, 'portcullis_http_requests_total{route="all",method="POST",status="408"}'), 1, 'counted 408')
  t.notOk(gw.logs.some(l => l.msg === 'upstream request failed'), 'no upstream failure logged')
}

t.test('a body read whole before the upstream is contacted stalls past the request timeout: 408, never sent upstream', async t => {
  const { gw, heads } = await gateway(t, (req, res) => { req.resume(); res.end('ok') }, '500ms')
  is408(t, await sendAndRead(gw, STALLED(100)))
  await countedAsClient(t, gw)
  t.equal(heads(), 0, 'the upstream never saw it')
})

t.test('a body streamed to an upstream that reads it stalls past the request timeout: 408, the upstream try aborted', async t => {
  let aborted = false
  const { gw, heads } = await gateway(t, (req, res) => {
    req.resume()
    res.on('close', () => { aborted = !res.writableFinished })
  })
  // Over requestBuffer (64 KiB): streamed.
  is408(t, await sendAndRead(gw, STALLED(1_000_000)))
  await countedAsClient(t, gw)
  t.equal(heads(), 1)
  t.ok(await until(() => aborted), 'the upstream try was aborted')
})

t.test('waiting on the upstream still answers 504: a complete body answered late, a body the upstream does not take', async t => {
  const { gw } = await gateway(t, req => {
    if (req.url === '/late') req.resume() // never answered
    // /held reads nothing: its backpressure holds the gateway's read of the body.
  })
  const late = await sendAndRead(gw, 'POST /late HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\nconnection: close\r\n\r\n0123456789')
  t.match(late, /^HTTP\/1\.1 504 /, 'a complete body: 504')
  // More than the sockets' buffers hold: the gateway pauses the client's body, sent whole by the client.
  const length = 64 * 1024 * 1024
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write(`POST /held HTTP/1.1\r\nhost: x\r\ncontent-length: ${length}\r\n\r\n`)
  socket.write(Buffer.alloc(length, 'a'))
  t.ok(await until(() => Buffer.concat(chunks).toString('latin1').startsWith('HTTP/1.1 '), 10_000), 'answered')
  t.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 504 /, 'a body the upstream holds: 504')
  t.equal(await metric(gw, 'portcullis_timeouts_total{kind="request"}'), 2)
  t.equal(await metric(gw, 'portcullis_timeouts_total{kind="client_body_timeout"}'), 0)
})

t.test('over HTTP/2: 408, counted as a client body timeout', async t => {
  const up = await startUpstream((req, res) => { req.resume(); req.on('end', () => res.end('ok')) })
  t.teardown(() => up.close())
  const { gw, connect: h2 } = await startH2Gateway(t, 'true', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, timeouts: { request: 500ms } }
`, { server: '  clientTimeouts: { body: 0s }\n' })
  const session = await h2()
  const stream = session.request({ ':method': 'POST', ':path': '/upload', 'content-length': '100' }, { endStream: false })
  stream.on('error', () => {})
  stream.write('a'.repeat(10))
  const [head] = await once(stream, 'response') as [Record<string, string>]
  t.equal(head[':status'], 408)
  await countedAsClient(t, gw)
})
