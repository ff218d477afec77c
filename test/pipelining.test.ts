import t from 'tap'
import { once } from 'node:events'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { until } from './helpers/wait.ts'
import { writeTracerPlugin } from './helpers/tracer-plugin.ts'

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
async function pipeline (paths: string[]): Promise<{ socket: Socket, received: () => Buffer }> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
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
