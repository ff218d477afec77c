import t from 'tap'
import { once } from 'node:events'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { until } from './helpers/wait.ts'
import { writeTracerPlugin } from './helpers/tracer-plugin.ts'
import { waitForLog } from './helpers/logs.ts'

// HTTP/1.1 pipelining (RFC 9112 9.3.2): requests sent back to back on one connection are answered
// in the order they came, whatever order their upstream answers arrive in.

const BIG = 32 * 1024 * 1024
const CHUNK = Buffer.alloc(64 * 1024, 'b')

const up = await startUpstream((req, res) => {
  if (req.url === '/big') {
    res.writeHead(200, { 'content-length': String(BIG) })
    let left = BIG
    const more = () => {
      while (left > 0) { left -= CHUNK.length; if (!res.write(CHUNK)) { res.once('drain', more); return } }
      res.end()
    }
    more()
    return
  }
  if (req.url === '/slow-body') {
    res.writeHead(200, { 'content-length': '5' })
    setTimeout(() => res.end('hello'), 1_000)
    return
  }
  if (req.url === '/chunked') {
    res.writeHead(200, { 'content-type': 'text/plain' })
    for (let i = 0; i < 16; i++) res.write(CHUNK)
    res.end()
    return
  }
  const delay = req.url === '/slow' ? 200 : 0
  setTimeout(() => res.end(`answer to ${req.url as string}`), delay)
})
t.teardown(() => up.close())
const dir = t.testdir({})
writeTracerPlugin(dir, 'p200', 200)
const gw = await startGateway(`
loadPlugins: [ ./p200.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: failing, match: { path: /failing }, upstream: up, timeouts: { request: 200ms }, plugins: { p200: { fail: request } } }
  - { name: all, match: { path: /* }, upstream: up }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())

/** Sends `paths` as pipelined GETs in one write (the last one closes the connection); returns the socket and what it receives. */
async function pipeline (paths: string[], url = gw.url): Promise<{ socket: Socket, received: () => Buffer }> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write(paths.map((p, i) => `GET ${p} HTTP/1.1\r\nhost: x\r\n${i === paths.length - 1 ? 'connection: close\r\n' : ''}\r\n`).join(''))
  return { socket, received: () => Buffer.concat(chunks) }
}

/** The responses in `raw`, in order: status and body (by Content-Length). */
function responses (raw: Buffer): Array<{ status: number, body: Buffer }> {
  const out: Array<{ status: number, body: Buffer }> = []
  for (let at = 0; at < raw.length;) {
    const end = raw.indexOf('\r\n\r\n', at)
    const head = raw.subarray(at, end).toString('latin1')
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1])
    out.push({ status: Number(head.slice(9, 12)), body: raw.subarray(end + 4, end + 4 + length) })
    at = end + 4 + length
  }
  return out
}

t.test('pipelined requests are answered in the order they came, a slow one first included', async t => {
  const { socket, received } = await pipeline(['/slow', '/fast', '/other'])
  await once(socket, 'close')
  t.same(responses(received()).map(r => [r.status, r.body.toString()]),
    [[200, 'answer to /slow'], [200, 'answer to /fast'], [200, 'answer to /other']])
})

t.test('a plugin failure queued behind a response the client has not read stays a 500: the request timeout that comes meanwhile changes nothing', async t => {
  const { socket, received } = await pipeline(['/big', '/failing'])
  socket.pause()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'plugin failed')), 'the second request failed in its plugin')
  // Past its request timeout (200 ms), its 500 still waiting behind the first response: asserts that nothing happens meanwhile.
  await new Promise(resolve => setTimeout(resolve, 500))
  socket.resume()
  await once(socket, 'close')
  const [first, second] = responses(received())
  t.equal(first?.status, 200)
  t.equal(first?.body.length, BIG, 'the first response whole')
  t.equal(second?.status, 500, 'then the 500')
  t.notOk(gw.logs.some(l => l.msg === 'upstream request failed'), 'no timeout logged')
})

t.test('a response queued behind a slow one, cut by its request timeout: a send timeout that comes later does not take the cut over', async t => {
  const own = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { send: 600ms }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: timed, match: { path: /chunked }, upstream: up, timeouts: { request: 300ms } }
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => own.close())
  // The second answer streams into the gateway at once but waits behind the first (1 s), past its
  // request timeout (300 ms) and its send timeout (600 ms) both.
  const { socket, received } = await pipeline(['/slow-body', '/chunked'], own.url)
  await once(socket, 'close')
  const [first] = responses(received().subarray(0, received().indexOf('hello') + 5))
  t.same([first?.status, first?.body.toString()], [200, 'hello'], 'the first answer whole, then the connection closed')
  t.match(await waitForLog(own.logs, { msg: 'request', path: '/chunked' }), { status: 200, error: 'request_timeout' })
  t.notOk(own.logs.some(l => l.error === 'client_send_timeout'), 'the send timer had nothing left to cut')
})
