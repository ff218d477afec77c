import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { recordingUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { waitForLog } from '../helpers/logs.ts'

// HTTP/1.1 pipelining: a request Node's parser refuses, sent behind valid ones in the same packet.
// As nginx does, the valid ones are answered in full, in order, then the malformed one gets the
// gateway's 400 (as when alone), and the connection closes: the answers the upstream gave are not lost.

/** What the upstream did (see recordingUpstream). /slow paths are answered after 200 ms, /long after 1 s, /hang after 3 s. */
const up = await recordingUpstream(path => path.startsWith('/slow') ? 200 : path.startsWith('/long') ? 1_000 : path.startsWith('/hang') ? 3_000 : 0)
const { events } = up
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** A gateway of its own whose clientTimeouts.headers is `headers`. */
async function shortGateway (t: Test, headers: string): Promise<TestGateway> {
  const short = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { headers: ${headers} }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => short.close())
  return short
}

/** Writes `data` in one packet on a new connection (to `to`) and returns what came back once the gateway ended it. */
async function send (data: string, to = port): Promise<Buffer> {
  const socket = connect(to, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  const ended = once(socket, 'end')
  socket.write(data)
  await ended
  socket.destroy()
  return Buffer.concat(chunks)
}

interface Answer { status: number, headers: string, body: string }

/** The responses in `raw`, in order, each framed by its Content-Length; nothing may follow the last. */
function responses (raw: Buffer): Answer[] {
  const out: Answer[] = []
  for (let at = 0; at < raw.length;) {
    const end = raw.indexOf('\r\n\r\n', at)
    if (end < 0) throw new Error(`an incomplete response: ${raw.subarray(at).toString('latin1')}`)
    const head = raw.subarray(at, end).toString('latin1')
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1])
    out.push({ status: Number(head.slice(9, 12)), headers: head.toLowerCase(), body: raw.subarray(end + 4, end + 4 + length).toString('latin1') })
    at = end + 4 + length
  }
  return out
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`
const logged = (path: string) => gw.logs.filter(l => l.path === path).map(l => `${l.msg as string} ${l.status as number}`)

const malformed = [
  { name: 'a header line without a colon', bytes: 'GET /bad HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n', status: 400, error: 'bad_request' },
  { name: 'headers over the size limit', bytes: `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431, error: 'headers_too_large' },
  { name: 'both Content-Length and Transfer-Encoding', bytes: 'POST /both HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', status: 400, error: 'bad_request' }
]

t.test('a malformed request behind a valid one: the valid answer whole first, then the 400, then the connection closes', async t => {
  for (const [i, m] of malformed.entries()) {
    events.length = 0
    const rejected = gw.logs.filter(l => l.msg === 'request rejected').length
    const slow = `/slow-${i}`
    const [first, second, ...more] = responses(await send(get(slow) + m.bytes))
    t.same([first?.status, first?.body], [200, `answer to ${slow}`], `${m.name}: the valid request's answer, whole`)
    t.equal(second?.status, m.status, `${m.name}: then the malformed one's`)
    const id = /\r\nx-request-id: *([^\r]+)/.exec(second?.headers ?? '')?.[1]
    t.match(JSON.parse(second?.body ?? '{}'), { error: m.error, message: String, requestId: id }, `${m.name}: the gateway's JSON error`)
    t.match(second?.headers, /\r\nconnection: close/, `${m.name}: which closes the connection`)
    t.same(more, [], `${m.name}: nothing after it`)
    t.same(events, [`start ${slow}`, `end ${slow}`], `${m.name}: the valid one run once`)
    t.ok(await until(() => logged(slow).length > 0), `${m.name}: the valid one logged`)
    t.same(logged(slow), ['request 200'], `${m.name}: the valid one logged once, answered`)
    const lines = gw.logs.filter(l => l.msg === 'request rejected').slice(rejected)
    t.match(lines, [{ status: m.status, error: m.error, requestId: id, clientIp: '127.0.0.1' }], `${m.name}: the malformed one logged as rejected, once`)
  }
})

t.test('a chunked body that cannot be parsed, pipelined behind a valid request: its 400 comes after the answer, the request not run', async t => {
  events.length = 0
  const bad = 'POST /bad-chunk HTTP/1.1\r\nHost: a\r\nX-Request-Id: bad-chunk-id\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'
  const [first, second, ...more] = responses(await send(get('/slow-chunk') + bad))
  t.same([first?.status, first?.body], [200, 'answer to /slow-chunk'], 'the valid request\'s answer, whole')
  t.equal(second?.status, 400, 'then the 400')
  t.match(JSON.parse(second?.body ?? '{}'), { error: 'bad_request', requestId: 'bad-chunk-id' }, 'the gateway\'s JSON error, with the request\'s id')
  t.match(second?.headers, /\r\nconnection: close/, 'which closes the connection')
  t.same(more, [])
  t.same(events, ['start /slow-chunk', 'end /slow-chunk'], 'the malformed request never reaches the upstream')
  t.ok(await until(() => logged('/bad-chunk').length > 0), 'the malformed request is logged')
  t.same(logged('/bad-chunk'), ['request rejected 400'])
})

t.test('two valid requests then a malformed one: both answered, in order, then the 400', async t => {
  events.length = 0
  const [first, second, third, ...more] = responses(await send(get('/slow-1') + get('/two') + malformed[0]!.bytes))
  t.same([first?.status, first?.body], [200, 'answer to /slow-1'])
  t.same([second?.status, second?.body], [200, 'answer to /two'])
  t.same([third?.status, JSON.parse(third?.body ?? '{}').error], [400, 'bad_request'])
  t.same(more, [])
  t.same(events, ['start /slow-1', 'end /slow-1', 'start /two', 'end /two'], 'one at a time')
})

t.test('a wait longer than clientTimeouts.headers: the refused head is answered after the valid one all the same, not timed out', async t => {
  const short = await shortGateway(t, '200ms')
  const raw = await send(get('/long') + malformed[0]!.bytes, Number(new URL(short.url).port))
  t.same(responses(raw).map(r => [r.status, r.status === 200 ? r.body : JSON.parse(r.body).error]), [[200, 'answer to /long'], [400, 'bad_request']])
  t.same(short.logs.filter(l => l.msg === 'request rejected').map(l => l.status), [400], 'no 408 logged')
})

t.test('a pipelined head that takes longer than clientTimeouts.headers while an answer is under way: the answer whole first, then the 408', async t => {
  const short = await shortGateway(t, '300ms')
  // A head left unfinished behind /long (answered after 1 s), never completed in time.
  const raw = await send(get('/long') + 'GET /late HTTP/1.1\r\nHost: x\r\n', Number(new URL(short.url).port))
  t.same(responses(raw).map(r => [r.status, r.status === 200 ? r.body : JSON.parse(r.body).error]), [[200, 'answer to /long'], [408, 'request_timeout']])
  t.match(await waitForLog(short.logs, { msg: 'request', path: '/long' }), { status: 200 }, 'the answer logged as sent, not as a client that left')
  t.same(short.logs.filter(l => l.msg === 'request rejected').map(l => l.status), [408], 'the 408 logged')
  t.notOk(events.includes('start /late'), 'the unfinished head never became a request')
})

t.test('a client that leaves while the valid request is still upstream frees the connection at once', async t => {
  events.length = 0
  const rejected = gw.logs.filter(l => l.msg === 'request rejected').length
  let server: Socket | undefined
  gw.gateway.app.server.once('connection', (s: Socket) => { server = s })
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(get('/hang') + malformed[0]!.bytes)
  t.ok(await until(() => events.includes('start /hang')), 'the valid one is under way')
  socket.destroy()
  // Before the upstream's 3 s (once it answers, its request is no longer `gone`): the gateway saw its client leave.
  // 2 s at most each, room for a loaded machine: each wait ends as soon as it holds.
  t.ok(await until(() => server?.destroyed === true, 2_000), 'the connection is closed')
  t.ok(await until(() => events.includes('gone /hang'), 2_000), 'the upstream sees its request aborted')
  t.notOk(events.includes('end /hang'), 'not answered: aborted before the upstream\'s 3 s')
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0, 2_000), 'no request in flight')
  t.ok(await until(() => logged('/hang').length > 0), 'the valid one logged')
  t.same(logged('/hang'), ['request 499'])
  t.equal(gw.logs.filter(l => l.msg === 'request rejected').length, rejected, 'the malformed one, never answered, is not logged')
})

// Read on, so that a client that leaves is seen, and thrown away; bounded, since the request before
// it may never end (a stream): past 1 MiB the connection is cut, as if its client had left.
t.test('more bytes behind the malformed request are thrown away while the valid one runs; past 1 MiB the connection is cut', async t => {
  events.length = 0
  let server: Socket | undefined
  gw.gateway.app.server.once('connection', (s: Socket) => { server = s })
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  const closed = new Promise(resolve => socket.once('close', resolve))
  socket.write(get('/hang-flood') + malformed[0]!.bytes)
  t.ok(await until(() => events.includes('start /hang-flood')), 'the valid one is under way')
  const flood = Buffer.alloc(64 * 1024, 'x')
  for (let i = 0; i < 64 && !socket.destroyed; i++) socket.write(flood)
  await closed
  const read = server?.bytesRead ?? 0
  t.ok(read > 1024 * 1024 && read < 2 * 1024 * 1024, `read ${read} of ${64 * flood.length} bytes sent behind`)
  t.ok(await until(() => events.includes('gone /hang-flood')), 'the request under way ends with its connection, before its answer')
})

t.test('a malformed request alone: the 400 as before, logged once', async t => {
  for (const m of malformed) {
    const rejected = gw.logs.filter(l => l.msg === 'request rejected').length
    const [only, ...more] = responses(await send(m.bytes))
    t.equal(only?.status, m.status, `${m.name}: status`)
    const id = /\r\nx-request-id: *([^\r]+)/.exec(only?.headers ?? '')?.[1]
    t.match(JSON.parse(only?.body ?? '{}'), { error: m.error, message: String, requestId: id }, `${m.name}: the gateway's JSON error`)
    t.match(only?.headers, /\r\nconnection: close/)
    t.same(more, [])
    const lines = gw.logs.filter(l => l.msg === 'request rejected').slice(rejected)
    t.match(lines, [{ status: m.status, error: m.error, requestId: id, clientIp: '127.0.0.1' }], `${m.name}: logged once`)
    t.equal(lines[0]?.path, undefined, `${m.name}: with no path (no request was parsed)`)
  }
})
