import t from 'tap'
import { once } from 'node:events'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { writeTracerPlugin } from './helpers/tracer-plugin.ts'
import { waitForLog } from './helpers/logs.ts'

// HTTP/1.1 pipelining (RFC 9112 9.3.2): requests sent back to back on one connection are served
// one at a time, in the order they came (see also test/server/pipelined-behind-close.test.ts).

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

t.test('a request pipelined behind a response the client has not read runs only once that response is done: one at a time, as nginx serves them', async t => {
  const { socket, received } = await pipeline(['/big', '/failing'])
  socket.pause()
  // The first response waits for the client (32 MiB, far past the socket's buffers): asserts that the second is not run meanwhile.
  await new Promise(resolve => setTimeout(resolve, 500))
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'the second request is not run yet')
  socket.resume()
  await once(socket, 'close')
  const [first, second] = responses(received())
  t.equal(first?.status, 200)
  t.equal(first?.body.length, BIG, 'the first response whole')
  t.equal(second?.status, 500, 'then the 500 of the second, run once the first was done')
  t.ok(gw.logs.some(l => l.msg === 'plugin failed'), 'it failed in its plugin')
  t.notOk(gw.logs.some(l => l.msg === 'upstream request failed'), 'no timeout logged')
})

t.test('a request pipelined behind a slow response is run once that response is done: its request timeout counts from then', async t => {
  const own = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: timed, match: { path: /chunked }, upstream: up, timeouts: { request: 600ms } }
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => own.close())
  // The first answer takes 1 s, past the second's request timeout (600 ms: room for its own 1 MiB on a loaded machine).
  const { socket, received } = await pipeline(['/slow-body', '/chunked'], own.url)
  await once(socket, 'close')
  const [first] = responses(received().subarray(0, received().indexOf('hello') + 5))
  t.same([first?.status, first?.body.toString()], [200, 'hello'], 'the first answer whole')
  t.ok(received().toString('latin1').endsWith('0\r\n\r\n'), 'then the second, whole')
  const line = await waitForLog(own.logs, { msg: 'request', path: '/chunked' })
  t.match(line, { status: 200, bytes: 16 * CHUNK.length })
  t.equal(line?.error, undefined, 'not cut by its request timeout')
})
