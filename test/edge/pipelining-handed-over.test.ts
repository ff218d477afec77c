import t from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

// Node hands the socket over for a CONNECT or an upgrade, its parser detached, while responses to
// requests pipelined before it may still be under way. A CONNECT was answered (501) at once, ahead
// of them, and the connection closed under them: their answers, which the upstream had given, were
// lost. An upgrade as the 18th request was not counted against the bound of 16 waiting: it opened
// its tunnel where any other request would get 429.

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const uncaught: unknown[] = []
const onUncaught = (err: unknown): void => { uncaught.push(err) }
process.prependListener('uncaughtException', onUncaught)
t.teardown(() => { process.removeListener('uncaughtException', onUncaught) })

/** Plain requests: `answer to <path>`, /slow ones after 10 s (past every wait below); upgrades: a 101, then an echo. */
const events: string[] = []
const slow = new Set<ServerResponse>()
const upgrades: Socket[] = []
const up = createServer((req: IncomingMessage, res: ServerResponse) => {
  const path = req.url as string
  events.push(`start ${path}`)
  res.on('close', () => { if (!res.writableFinished) events.push(`gone ${path}`) })
  req.resume()
  if (path.startsWith('/slow')) slow.add(res)
  else req.on('end', () => res.end(`answer to ${path}`))
})
up.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
  upgrades.push(socket)
  socket.on('error', () => {})
  socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n')
  socket.on('data', (c: Buffer) => socket.write(c))
  socket.on('end', () => socket.end())
})
await new Promise<void>(resolve => up.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>(resolve => {
  for (const res of slow) res.destroy()
  for (const s of upgrades) s.destroy()
  up.closeAllConnections()
  up.close(() => resolve())
}))
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(up.address() as AddressInfo).port}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, upgrade: [foo] }
`)
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

const get = (path: string) => `GET ${path} HTTP/1.1\r\nhost: x\r\n\r\n`
const UPGRADE = 'GET /t HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: foo\r\n\r\n'
const CONNECT = 'CONNECT internal.example:443 HTTP/1.1\r\nhost: internal.example:443\r\n\r\n'

/** A connection that has sent `bytes` in one write; what it receives is kept. */
async function client (bytes: string): Promise<{ socket: Socket, received: () => string, closed: () => boolean }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  let closed = false
  socket.on('close', () => { closed = true })
  socket.write(bytes)
  return { socket, received: () => received, closed: () => closed }
}

const statuses = (received: string) => [...received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
const answers = (received: string) => [...received.matchAll(/answer to (\/\S+?)(?=HTTP|$)/g)].map(m => m[1])
const paths = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}/${i}`)

t.beforeEach(() => { events.length = 0 })

t.test('a CONNECT pipelined behind requests still being answered: their answers first, in order, then its 501, then the close', async t => {
  const c = await client(get('/a') + get('/b') + CONNECT + get('/after'))
  t.ok(await until(c.closed), 'closed')
  t.same(statuses(c.received()), [200, 200, 501], 'both answers, then the refusal')
  t.same(answers(c.received()), ['/a', '/b'], 'whole, in order')
  const refusal = c.received().slice(c.received().indexOf('HTTP/1.1 501'))
  t.match(refusal, /\r\nconnection: close\r\n/i)
  t.match(JSON.parse(refusal.slice(refusal.indexOf('\r\n\r\n') + 4)), { error: 'not_implemented' })
  t.match(await waitForLog(gw.logs, { msg: 'request rejected', method: 'CONNECT' }), { status: 501 })
  t.same(events, ['start /a', 'start /b'], 'nothing after it ran')
})

t.test('a CONNECT waiting behind a slow request whose client resets: the reset is seen, the request aborted at once', async t => {
  const refused = () => gw.logs.filter(l => l.msg === 'request rejected' && l.method === 'CONNECT').length
  const before = refused()
  // Tunnel bytes past its head, more than a socket buffers before it stops reading.
  const c = await client(get('/slow/connect') + CONNECT + 'tunnel bytes'.repeat(20_000))
  t.ok(await until(() => events.includes('start /slow/connect')), 'the request is at the upstream')
  c.socket.resetAndDestroy()
  t.ok(await until(() => events.includes('gone /slow/connect'), 3_000), 'aborted, long before the upstream answers')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/slow/connect' }), { status: 499 })
  t.equal(refused(), before, 'the CONNECT is not answered: its client left before its turn')
  t.same(uncaught, [], 'nothing uncaught: Node no longer guards the socket it handed over')
})

t.test('an upgrade as the 18th pipelined request (16 wait before it): refused 429 in its turn, after the 17 answers, and the connection closes', async t => {
  upgrades.length = 0
  const c = await client(['/first', ...paths('/fast', 16)].map(get).join('') + UPGRADE + 'hello')
  t.ok(await until(c.closed), 'closed')
  t.same(statuses(c.received()), [...Array(17).fill(200), 429], 'the 17 before it, then the 429')
  t.same(answers(c.received()), ['/first', ...paths('/fast', 16)], 'in order')
  const refusal = c.received().slice(c.received().indexOf('HTTP/1.1 429'))
  t.match(refusal, /\r\nconnection: close\r\n/i)
  t.match(JSON.parse(refusal.slice(refusal.indexOf('\r\n\r\n') + 4)), { error: 'too_many_requests' })
  t.equal(upgrades.length, 0, 'the upgrade never went out')
  t.match(await waitForLog(gw.logs, { msg: 'request rejected', path: '/t', status: 429 }), { method: 'GET' })
})

t.test('an upgrade as the 17th (15 wait before it): within the bound, its tunnel opens in its turn', async t => {
  upgrades.length = 0
  const c = await client(['/first', ...paths('/fast', 15)].map(get).join('') + UPGRADE)
  t.ok(await until(() => c.received().includes('HTTP/1.1 101 ')), 'the 101 came')
  t.same(statuses(c.received()), [...Array(16).fill(200), 101])
  c.socket.write('through')
  t.ok(await until(() => c.received().endsWith('\r\n\r\nthrough')), 'the tunnel echoes')
  c.socket.destroy()
})
