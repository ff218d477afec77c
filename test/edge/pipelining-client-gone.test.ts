import t from 'tap'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { recordingUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// Past 16 requests waiting their turn on one connection, the gateway paused the connection to read
// no more of it: a paused socket does not see its client leave, so a client that pipelined 18
// requests and then reset (or ended) its connection held its upstream slot until the upstream
// answered, and the requests behind it then ran one by one, all for nobody. Reading on stopped past
// 16 KiB, which brought the same back for a client that sent more before it reset.

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'
/** Paths from /slow are answered after 10 s (well past every wait below), others at once. */
const up = await recordingUpstream(path => path.startsWith('/slow') ? 10_000 : 0)
const { events } = up
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ], connections: 2, queue: { timeout: 2s }, retries: false }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)
const inFlight = () => gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]?.inFlight
const started = (prefix: string) => events.filter(e => e.startsWith(`start ${prefix}`))

/** A connection that sends `paths` as pipelined GETs in one write; what it receives is kept. */
async function pipeline (paths: string[]): Promise<{ socket: Socket, received: () => string }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.write(paths.map(p => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join(''))
  return { socket, received: () => received }
}

const paths = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}/${i}`)

t.test('clients that pipelined 18 requests and then reset: their first requests are aborted at once, the upstream free again', async t => {
  events.length = 0
  const clients = await Promise.all([pipeline(paths('/slow/a', 18)), pipeline(paths('/slow/b', 18))])
  t.ok(await until(() => inFlight() === 2), 'both first requests are at the upstream, its two connections taken')
  for (const { socket } of clients) socket.resetAndDestroy()
  t.ok(await until(() => inFlight() === 0, 3_000), 'the resets are seen: both tries aborted, long before the upstream answers')
  t.ok(await until(() => events.includes('gone /slow/a/0') && events.includes('gone /slow/b/0')), 'dropped at the upstream')
  t.same([...started('/slow/a'), ...started('/slow/b')], ['start /slow/a/0', 'start /slow/b/0'], 'nothing behind them ran')
  const res = await fetch(`${gw.url}/fast`)
  t.equal(res.status, 200, 'another client is served, not refused as busy')
})

t.test('a client that sends more requests once it has one too many waiting, then resets: the reset is seen too', async t => {
  events.length = 0
  const { socket } = await pipeline(paths('/slow/d', 18))
  t.ok(await until(() => events.includes('start /slow/d/0')), 'the first request is at the upstream')
  socket.write(paths('/slow/e', 50).map(p => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join(''))
  socket.write(paths('/slow/f', 50).map(p => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join(''))
  // Nothing marks that the gateway has read them: a reset before would be seen all the same.
  await new Promise(resolve => setTimeout(resolve, 100))
  socket.resetAndDestroy()
  t.ok(await until(() => events.includes('gone /slow/d/0'), 3_000), 'the reset is seen: the first is aborted')
  t.same(events.filter(e => e.startsWith('start')), ['start /slow/d/0'], 'nothing behind it ran')
})

t.test('a client that sends well past 16 KiB once it has one too many waiting, then resets: the gateway reads on, the reset is seen', async t => {
  events.length = 0
  const accepted = once(gw.gateway.app.server, 'connection') as Promise<[Socket]>
  const { socket } = await pipeline(paths('/slow/g', 18))
  const [server] = await accepted
  t.ok(await until(() => events.includes('start /slow/g/0')), 'the first request is at the upstream')
  // Sent after the 18th was parsed: what the paused parser refuses, 256 KiB of it.
  const more = paths('/slow/h', 8_000).map(p => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join('')
  socket.write(more)
  const sent = socket.bytesWritten
  t.ok(await until(() => server.bytesRead === sent), 'all of it is read (a socket no longer read misses a reset)')
  socket.resetAndDestroy()
  t.ok(await until(() => events.includes('gone /slow/g/0'), 3_000), 'the reset is seen: the first is aborted, its slot free')
  t.ok(await until(() => inFlight() === 0))
  t.same(events.filter(e => e.startsWith('start')), ['start /slow/g/0'], 'nothing behind it ran')
})

t.test('a client that pipelined 100 requests and then ended its side: its first request is aborted, none behind it runs', async t => {
  events.length = 0
  const { socket } = await pipeline(paths('/slow/c', 100))
  t.ok(await until(() => events.includes('start /slow/c/0')), 'the first request is at the upstream')
  socket.end()
  t.ok(await until(() => events.includes('gone /slow/c/0'), 3_000), 'the FIN is seen: the first is aborted')
  t.ok(await until(() => inFlight() === 0))
  t.same(started('/slow/c'), ['start /slow/c/0'], 'nothing behind it ran')
  socket.destroy()
})

t.test('past 16 requests waiting, the next is answered 429 in its turn, after those before it, and the connection closes', async t => {
  events.length = 0
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  const ended = once(socket, 'end')
  // The first is under way (not waiting): 16 wait behind it, the 18th is one too many.
  socket.write(['/first', ...paths('/fast', 19)].map(p => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join(''))
  await ended
  socket.destroy()
  const statuses = [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
  t.same(statuses, [...Array(17).fill(200), 429], 'the 17 before it, then the 429, and nothing after')
  t.same([...received.matchAll(/answer to (\/first|\/fast\/\d+)/g)].map(m => m[1]), ['/first', ...paths('/fast', 16)], 'in order')
  const refusal = received.slice(received.lastIndexOf('HTTP/1.1 429'))
  t.match(refusal, /\r\nconnection: close\r\n/i, 'it says close')
  t.match(JSON.parse(refusal.slice(refusal.indexOf('\r\n\r\n') + 4)), { error: 'too_many_requests', message: /more than 16 requests/ })
  t.same(started('/fast').length, 16, 'neither it nor those after it ran')
  t.ok(gw.logs.some(l => l.msg === 'request rejected' && l.path === '/fast/16' && l.status === 429), 'logged as rejected')
  t.notOk(gw.logs.some(l => l.path === '/fast/17'), 'those after it are not logged')
})

// Behind a malformed request waiting its turn, the first bytes more stopped reading: a client that
// then reset was not seen, and the request under way held its upstream slot until it answered.
t.test('a client that pipelines a malformed request behind a slow one, sends more, then resets: the reset is seen', async t => {
  events.length = 0
  const accepted = once(gw.gateway.app.server, 'connection') as Promise<[Socket]>
  const { socket } = await pipeline(['/slow/m/0'])
  const [server] = await accepted
  t.ok(await until(() => events.includes('start /slow/m/0')), 'the first request is at the upstream')
  socket.write('GET /bad HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n')
  socket.write(paths('/slow/n', 8_000).map(p => `GET ${p} HTTP/1.1\r\nhost: x\r\n\r\n`).join(''))
  const sent = socket.bytesWritten
  t.ok(await until(() => server.bytesRead === sent), 'all of it is read')
  socket.resetAndDestroy()
  t.ok(await until(() => events.includes('gone /slow/m/0'), 3_000), 'the reset is seen: the first is aborted, its slot free')
  t.ok(await until(() => inFlight() === 0))
  t.same(events.filter(e => e.startsWith('start')), ['start /slow/m/0'], 'nothing behind it ran')
})

// What comes while a refused request waits its turn was read and thrown away without end: behind a
// stream (SSE) that never ends, a client could have the gateway read gigabytes for nothing.
t.test('past 1 MiB thrown away while a refused request waits its turn, the connection is cut: the request under way ends', async t => {
  events.length = 0
  const { socket } = await pipeline(paths('/slow/p', 18))
  t.ok(await until(() => events.includes('start /slow/p/0')), 'the first request is at the upstream')
  const junk = Buffer.alloc(64 * 1024, 'x')
  for (let i = 0; i < 20 && !socket.destroyed; i++) socket.write(junk)
  t.ok(await until(() => events.includes('gone /slow/p/0'), 5_000), 'cut: the first is aborted, long before the upstream answers')
  t.ok(await until(() => inFlight() === 0))
  socket.destroy()
})

// Node no longer watches a socket it handed over: a client that ended its side behind a pipelined
// CONNECT was not seen until the request before it was answered.
t.test('a client that ends its side while its pipelined CONNECT waits: the request before it is aborted', async t => {
  events.length = 0
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('GET /slow/q/0 HTTP/1.1\r\nhost: x\r\n\r\nCONNECT a.example:443 HTTP/1.1\r\nhost: a.example:443\r\n\r\n')
  t.ok(await until(() => events.includes('start /slow/q/0')), 'the first request is at the upstream')
  socket.end()
  t.ok(await until(() => events.includes('gone /slow/q/0'), 3_000), 'the FIN is seen: the first is aborted')
  t.ok(await until(() => inFlight() === 0))
  socket.destroy()
})
