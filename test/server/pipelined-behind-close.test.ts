import t from 'tap'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { recordingUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// HTTP/1.1 pipelining: Node parses requests sent back to back at once. The gateway serves them one
// at a time, each once the response before it is done: one behind a response that closes the
// connection is never run (its answer could not be sent), nor logged.

/** What the upstream did (see recordingUpstream). Paths from /slow are answered after 300 ms, /slow-deep after 2 s. */
const up = await recordingUpstream(path => path === '/slow-deep' ? 2_000 : path.startsWith('/slow') ? 300 : 0)
const { events } = up
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: size, match: { path: /size/* }, upstream: up, plugins: { request-size: { maxBody: 10 } } }
  - { name: all, match: { path: /* }, upstream: up }
`)
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** The gateway's open client connections. */
const connections = (gw: TestGateway) => (gw.gateway.app.server as unknown as { _connections: number })._connections

/**
 * Writes `parts` on a new connection, 10 ms apart (the first once the upstream has `waitFor`, if
 * given, for the others), and returns what came back once the gateway ended the connection.
 */
async function send (parts: string[], waitFor?: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const ended = once(socket, 'end')
  for (const [i, part] of parts.entries()) {
    if (i === 1 && waitFor !== undefined) await until(() => events.includes(`start ${waitFor}`))
    else if (i > 0) await new Promise(resolve => setTimeout(resolve, 10))
    socket.write(part)
  }
  await ended
  socket.destroy()
  return Buffer.concat(chunks).toString('latin1')
}

const statuses = (raw: string) => [...raw.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map(m => Number(m[1]))
const logged = (path: string) => gw.logs.filter(l => l.path === path).map(l => `${l.msg as string} ${l.status as number}`)

t.test('a request pipelined behind an answer that closes the connection is not run, nor logged', async t => {
  const tooLarge = (path: string, expect = '') => `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n${expect}\r\n${'x'.repeat(20)}`
  const cases = [
    { name: 'a POST behind a 413', status: 413, first: tooLarge('/size/a'), behind: '/size/transfer', next: 'POST /size/transfer HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' },
    { name: 'a GET to another route behind a 413', status: 413, first: tooLarge('/size/b'), behind: '/other', next: 'GET /other HTTP/1.1\r\nHost: a\r\n\r\n' },
    { name: 'a GET behind a 413 to Expect: 100-continue', status: 413, first: tooLarge('/size/c', 'Expect: 100-continue\r\n'), behind: '/after-continue', next: 'GET /after-continue HTTP/1.1\r\nHost: a\r\n\r\n' },
    { name: 'an unmet Expect behind a 413 (no 417 logged)', status: 413, first: tooLarge('/size/d'), behind: '/expecting', next: 'GET /expecting HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n' },
    { name: 'a GET behind a 501 for Transfer-Encoding: gzip, chunked', status: 501, first: 'POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', behind: '/after-501', next: 'GET /after-501 HTTP/1.1\r\nHost: a\r\n\r\n' },
    { name: 'a GET behind a 400 for HTTP/1.0 with Transfer-Encoding', status: 400, first: 'POST /te10 HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', behind: '/after-400', next: 'GET /after-400 HTTP/1.1\r\nHost: a\r\n\r\n' }
  ]
  // Each in one write: Node parses the second before the first is answered.
  const received = await Promise.all(cases.map(c => send([c.first + c.next])))
  for (const [i, c] of cases.entries()) t.same(statuses(received[i] as string), [c.status], `${c.name}: the answer to the first alone, then the connection closed`)
  // The connections are destroyed after their linger: any request still open on them is logged by then.
  t.ok(await until(() => connections(gw) === 0, 10_000), 'the connections are closed')
  for (const c of cases) {
    t.notOk(events.includes(`start ${c.behind}`), `${c.name}: not run at the upstream`)
    t.same(logged(c.behind), [], `${c.name}: not logged`)
  }
})

t.test('pipelined requests are run one at a time: each once the response before it is done', async t => {
  events.length = 0
  const raw = await send(['GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'])
  t.same(statuses(raw), [200, 200])
  t.ok(raw.endsWith('answer to /fast'))
  t.same(events, ['start /slow', 'end /slow', 'start /fast', 'end /fast'], 'the second sent upstream once the first was answered')
})

t.test('many requests pipelined behind a slow one are each served once, in order, with no listener piling up on it', async t => {
  const warnings: string[] = []
  const warned = (w: Error) => { warnings.push(w.name) }
  process.on('warning', warned)
  t.teardown(() => process.off('warning', warned))
  const paths = ['/slow-first', ...Array.from({ length: 16 }, (_, i) => `/behind-${i}`)]
  const raw = await send([paths.map((p, i) => `GET ${p} HTTP/1.1\r\nHost: a\r\n${i === paths.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('')])
  t.same([...raw.matchAll(/answer to (\/slow-first|\/behind-\d+)/g)].map(m => m[1]), paths, 'every answer, in order')
  t.same(warnings, [], 'no MaxListenersExceededWarning')
})

t.test('thousands of requests pipelined behind a slow one: past a few waiting, nothing more is parsed (not all held in memory)', async t => {
  events.length = 0
  let server: Socket | undefined
  gw.gateway.app.server.once('connection', (s: Socket) => { server = s })
  let parsed = 0
  const count = () => { parsed++ }
  gw.gateway.app.server.prependListener('request', count)
  t.teardown(() => gw.gateway.app.server.off('request', count))
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const flood = 'GET /a HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(20_000)
  socket.write('GET /slow-deep HTTP/1.1\r\nHost: a\r\n\r\n' + flood)
  const sent = socket.bytesWritten
  t.ok(await until(() => events.includes('start /slow-deep')), 'the first is under way')
  // Read on (thrown away) while the first runs, so that a client that leaves is seen.
  t.ok(await until(() => server?.bytesRead === sent), 'all of it read')
  t.notOk(events.includes('end /slow-deep'), 'looked while the first runs')
  t.ok(parsed < 5_000, `${parsed} of 20,001 requests parsed: one chunk`)
  socket.destroy()
  t.ok(await until(() => connections(gw) === 0), 'the connection is closed once the client has left')
})

t.test('a request pipelined behind one whose client leaves is dropped with the connection', async t => {
  events.length = 0
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write('GET /slow-left HTTP/1.1\r\nHost: a\r\n\r\nGET /left-behind HTTP/1.1\r\nHost: a\r\n\r\n')
  t.ok(await until(() => events.includes('start /slow-left')), 'the first is under way')
  socket.destroy()
  t.ok(await until(() => connections(gw) === 0), 'the connection is closed')
  t.ok(await until(() => events.includes('gone /slow-left')), 'the first is dropped at the upstream')
  t.ok(await until(() => logged('/slow-left').length > 0), 'and logged')
  t.same(logged('/slow-left'), ['request 499'])
  t.notOk(events.includes('start /left-behind'), 'the second never runs')
  t.same(logged('/left-behind'), [], 'nor is logged')
})

t.test('bytes after a request that said it was the last are ignored: the request is answered', async t => {
  let errors = 0
  const count = () => { errors++ }
  gw.gateway.app.server.on('clientError', count)
  t.teardown(() => gw.gateway.app.server.off('clientError', count))
  const cases = [
    { name: 'a request behind Connection: close', path: '/close', parts: ['GET /close HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /not-served HTTP/1.1\r\nHost: a\r\n\r\n'] },
    { name: 'a request behind an HTTP/1.0 one', path: '/http10', parts: ['GET /http10 HTTP/1.0\r\nHost: a\r\n\r\nGET /not-served HTTP/1.1\r\nHost: a\r\n\r\n'] },
    { name: 'a body longer than its Content-Length', path: '/long-body', parts: ['POST /long-body HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 2\r\n\r\nabcdef'] },
    // Several chunks while the answer is under way: handled once, nothing more read.
    { name: 'bytes sent later, while the answer is under way', path: '/slow', parts: ['GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 'later', 'and later', 'and later still'], waitFor: '/slow' }
  ]
  for (const c of cases) {
    errors = 0
    events.length = 0
    const raw = await send(c.parts, c.waitFor)
    t.same(statuses(raw), [200], `${c.name}: answered, then the connection closed`)
    t.ok(raw.endsWith(`answer to ${c.path}`), `${c.name}: the upstream's answer`)
    t.same(events.filter(e => e.startsWith('start')), [`start ${c.path}`], `${c.name}: nothing else run`)
    t.equal(errors, 1, `${c.name}: the extra bytes handled once`)
  }
  t.ok(await until(() => connections(gw) === 0, 10_000), 'the connections are closed')
  for (const c of cases) t.same(logged(c.path).at(-1), 'request 200', `${c.name}: logged as answered`)
  t.same(logged('/not-served'), [], 'the request after is not served')
})
