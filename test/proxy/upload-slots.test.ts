import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Connect } from '../helpers/http2.ts'
import { until } from '../helpers/wait.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { answerDigest, digest } from '../helpers/digest-upstream.ts'

// A streamed request body (past requestBuffer, or of unknown length: chunked, HTTP/2 without
// content-length) took an upstream connection before any of it came, and held it while the client
// sent a byte now and then: two HTTP/2 connections' 200 streams of HEADERS alone (2.7 KB) took a
// target's 128 connections. The body's first bytes are now waited for, and one HTTP/2 connection
// holds at most server.http2.maxStreamingUploads connections with bodies still arriving.

interface Rig { gw: TestGateway, h2c: string, file: string, heads: () => number, open: () => number, inFlight: () => Promise<number> }

/**
 * An upstream that answers `<length> <sha256>` of the body it read (under /echo, each piece of it
 * as it comes); counts request heads and those still open. `routes`: YAML list items before the catch-all.
 */
async function rig (t: Test, upstream: string, http2 = '', routes = ''): Promise<Rig> {
  let heads = 0
  let open = 0
  const up = await startUpstream((req, res) => {
    heads++
    open++
    res.on('close', () => { open-- })
    if (req.url === '/echo') { req.on('data', (c: Buffer) => res.write(c)); req.on('end', () => res.end()); return }
    answerDigest(req, res)
  })
  t.teardown(() => up.close())
  // A body timeout short enough that a stream the gateway would hold on to for ever ends the test's wait too.
  const yaml = `admin:
  listen: { host: 127.0.0.1, port: 0 }
server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 5s }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } }${http2} }
upstreams:
  up: { targets: [ { url: "${up.url}" } ], ${upstream} }
routes:
${routes}  - { name: all, match: { path: /* }, upstream: up }
`
  // In a file, to be reloaded.
  const file = join(t.testdir({ 'gateway.yaml': yaml }), 'gateway.yaml')
  const gw = await startGateway(yaml, { file })
  t.teardown(() => gw.close())
  const inFlight = async (): Promise<number> => {
    const r = await request(`${gw.adminUrl as string}/upstreams`)
    return ((await r.body.json()) as { upstreams: Array<{ targets: Array<{ inFlight: number }> }> }).upstreams[0]!.targets[0]!.inFlight
  }
  return { gw, h2c: gw.h2cUrl as string, file, heads: () => heads, open: () => open, inFlight }
}

async function session (t: Test, url: string): Promise<ClientHttp2Session> {
  const s = await h2Connect(url)
  t.teardown(() => s.destroy())
  return s
}

/** A POST on `s` whose body is left open; its answer (status, body) once it comes, and its head. */
function upload (s: ClientHttp2Session, path: string, headers: OutgoingHttpHeaders = {}): { stream: ClientHttp2Stream, answer: Promise<{ status: number, body: string }>, head: Promise<IncomingHttpHeaders> } {
  const stream = s.request({ ':method': 'POST', ':path': path, ...headers }, { endStream: false })
  const head = new Promise<IncomingHttpHeaders>(resolve => stream.once('response', resolve))
  const answer = new Promise<{ status: number, body: string }>((resolve, reject) => {
    let status = 0
    const chunks: Buffer[] = []
    stream.on('response', h => { status = Number(h[':status']) })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }))
    stream.on('error', reject)
  })
  return { stream, answer, head }
}

/** A chunked HTTP/1.1 POST whose head alone is sent. */
async function chunkedHead (t: Test, url: string): Promise<Socket> {
  const s = connect(Number(new URL(url).port), '127.0.0.1')
  t.teardown(() => s.destroy())
  s.on('error', () => {})
  await once(s, 'connect')
  s.write('POST /chunked HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n')
  return s
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

t.test('a streamed body not begun holds no upstream connection (HTTP/2 without and with a large content-length, chunked HTTP/1.1)', async t => {
  const r = await rig(t, 'connections: 2, queue: { timeout: 2s }')
  const s = await session(t, r.h2c)
  // 30 streams of HEADERS alone, 10 with a content-length over requestBuffer (64 KiB by default), and 2 chunked HTTP/1.1 heads.
  const uploads = Array.from({ length: 30 }, (_, i) => upload(s, `/up/${i}`, i % 3 === 0 ? { 'content-length': 100_000 } : {}))
  await chunkedHead(t, r.gw.url)
  await chunkedHead(t, r.gw.url)
  await sleep(300)
  t.equal(await r.inFlight(), 0, 'no body begun: no upstream connection taken')
  const started = performance.now()
  const legit = await request(`${r.gw.url}/legit`, { method: 'POST', body: 'x' })
  t.equal(legit.statusCode, 200, 'another client is served')
  await legit.body.text()
  t.ok(performance.now() - started < 1_500, 'at once, not after queue.timeout')
  // Bodies that then come are sent whole: one of unknown length, one of its content-length.
  const small = randomBytes(10_000)
  const large = randomBytes(100_000)
  ;(uploads[1] as ReturnType<typeof upload>).stream.end(small)
  ;(uploads[0] as ReturnType<typeof upload>).stream.end(large)
  t.same(await (uploads[1] as ReturnType<typeof upload>).answer, { status: 200, body: digest(small) })
  t.same(await (uploads[0] as ReturnType<typeof upload>).answer, { status: 200, body: digest(large) })
})

const BUSY = (reason: string): string => `portcullis_upstream_busy_total{upstream="up",reason="${reason}"}`
const UPLOADS_WAITING = 'portcullis_http2_uploads_waiting'

t.test('one HTTP/2 connection holds at most maxStreamingUploads upstream connections with bodies still arriving; the others wait within queue.timeout, then 503 upload_slots_busy', async t => {
  const r = await rig(t, 'connections: 10, requestBuffer: 1KiB, queue: { timeout: 1s }', ', maxStreamingUploads: 3')
  const admin = r.gw.adminUrl as string
  const s = await session(t, r.h2c)
  // Six uploads past requestBuffer that trickle on: the first three are sent, the rest wait.
  const uploads = Array.from({ length: 6 }, (_, i) => upload(s, `/trickle/${i}`))
  for (const u of uploads) u.stream.write(Buffer.alloc(2_048, 1))
  t.ok(await until(() => r.heads() === 3), 'three sent upstream')
  await sleep(200)
  t.equal(r.heads(), 3, 'no more')
  t.equal(await metricValue(admin, UPLOADS_WAITING), 3, 'the wait shows: three wait for an upload slot')
  t.match(await (await request(`${admin}/metrics`)).body.text(), /^portcullis_upstream_queue_length\{upstream="up",target="[^"]+"\} 0$/m, 'none for a connection of the target, which has them free')
  const other = await request(`${r.gw.url}/other`)
  t.equal(other.statusCode, 200, 'the target still serves other clients')
  await other.body.text()
  // The three waiting past queue.timeout: 503 of their own, not the upstream's upstream_busy.
  const waited = await Promise.all(uploads.slice(3).map(async u => await u.answer))
  t.same(waited.map(a => a.status), [503, 503, 503])
  t.match(JSON.parse(waited[0]!.body), { error: 'upload_slots_busy', message: /too many of this HTTP\/2 connection's requests are still sending their bodies/ })
  t.notMatch(waited[0]!.body, /every connection/)
  t.equal((await uploads[3]!.head)['retry-after'], '1')
  t.ok(await until(() => r.gw.logs.filter(l => l.msg === 'request' && l.status === 503 && l.error === 'upload_slots_busy').length === 3), 'logged, saying why')
  t.equal(await metricValue(admin, BUSY('upload-slots')), 3, 'counted under a reason of their own')
  t.equal(await metricValue(admin, BUSY('queue-timeout')), 0, 'not as the target\'s queue timing out')
  t.equal(await metricValue(admin, UPLOADS_WAITING), 0, 'none waits any more')
  // Those sent finish whole.
  for (const u of uploads.slice(0, 3)) u.stream.end(Buffer.alloc(100, 2))
  const body = Buffer.concat([Buffer.alloc(2_048, 1), Buffer.alloc(100, 2)])
  t.same((await Promise.all(uploads.slice(0, 3).map(async u => await u.answer))).map(a => a.body), new Array(3).fill(digest(body)))
})

t.test('the route\'s request timeout while a request waits for an upload slot: 503 upload_slots_busy, as at queue.timeout (the upstream never asked, nor blamed)', async t => {
  const r = await rig(t, 'connections: 10, requestBuffer: 1KiB, queue: { timeout: 10s }', ', maxStreamingUploads: 1',
    '  - { name: deadline, match: { path: /deadline/* }, upstream: up, timeouts: { request: 500ms } }\n')
  const admin = r.gw.adminUrl as string
  const s = await session(t, r.h2c)
  const holder = upload(s, '/hold')
  holder.stream.write(Buffer.alloc(2_048, 1))
  t.ok(await until(() => r.heads() === 1), 'the only slot taken')
  const waiting = upload(s, '/deadline/x')
  waiting.stream.write(Buffer.alloc(2_048, 1))
  const answer = await waiting.answer
  t.equal(answer.status, 503)
  t.match(JSON.parse(answer.body), { error: 'upload_slots_busy' })
  t.ok(await until(() => r.gw.logs.some(l => l.msg === 'request' && l.path === '/deadline/x')))
  t.match(r.gw.logs.find(l => l.msg === 'request' && l.path === '/deadline/x'), { route: 'deadline', status: 503, error: 'upload_slots_busy' }, 'logged, saying why')
  t.notOk(r.gw.logs.some(l => l.msg === 'upstream request failed'), 'no upstream failure logged')
  t.equal(r.heads(), 1, 'never sent upstream')
  t.equal(await metricValue(admin, BUSY('upload-slots')), 1)
  t.equal(await metricValue(admin, UPLOADS_WAITING), 0, 'it waits no more')
  holder.stream.end()
  t.same(await holder.answer, { status: 200, body: digest(Buffer.alloc(2_048, 1)) }, 'the holder is served')
})

t.test('a freed upload slot goes to the request waiting for it; a waiting body that ends needs none', async t => {
  const r = await rig(t, 'connections: 10, requestBuffer: 1KiB, queue: { timeout: 10s }', ', maxStreamingUploads: 1')
  const s = await session(t, r.h2c)
  const first = upload(s, '/first')
  first.stream.write(Buffer.alloc(2_048, 1))
  t.ok(await until(() => r.heads() === 1), 'the first holds the slot')
  const second = upload(s, '/second')
  second.stream.write(Buffer.alloc(2_048, 2))
  const third = upload(s, '/third')
  third.stream.write(Buffer.alloc(1_500, 3))
  await sleep(200)
  t.equal(r.heads(), 1, 'the others wait')
  // The third's body ends (within what Node reads ahead): it no longer needs an upload slot.
  third.stream.end(Buffer.alloc(500, 3))
  const thirdBody = Buffer.alloc(2_000, 3)
  t.same(await third.answer, { status: 200, body: digest(thirdBody) }, 'sent while the first still holds the slot')
  t.equal(r.heads(), 2)
  // The first ends: the second takes its slot.
  first.stream.end()
  t.same(await first.answer, { status: 200, body: digest(Buffer.alloc(2_048, 1)) })
  t.ok(await until(() => r.heads() === 3), 'the second is sent')
  second.stream.end(Buffer.alloc(10, 2))
  const secondBody = Buffer.concat([Buffer.alloc(2_048, 2), Buffer.alloc(10, 2)])
  t.same(await second.answer, { status: 200, body: digest(secondBody) })
})

t.test('a reload that raises maxStreamingUploads lets the requests waiting that now fit go at once', async t => {
  const r = await rig(t, 'connections: 10, requestBuffer: 1KiB, queue: { timeout: 10s }', ', maxStreamingUploads: 1')
  const s = await session(t, r.h2c)
  const uploads = ['/first', '/second', '/third'].map(path => upload(s, path))
  for (const u of uploads) u.stream.write(Buffer.alloc(2_048, 1))
  t.ok(await until(() => r.heads() === 1), 'the first holds the slot')
  await sleep(200)
  t.equal(r.heads(), 1, 'the others wait')
  writeFileSync(r.file, readFileSync(r.file, 'utf8').replace('maxStreamingUploads: 1', 'maxStreamingUploads: 2'))
  t.match(await r.gw.reloader.reload('admin'), { result: 'success' })
  // Within a second, not once the first ends (never, here) or queue.timeout (10 s) runs out.
  t.ok(await until(() => r.heads() === 2, 1_000), 'the second is sent at once')
  await sleep(200)
  t.equal(r.heads(), 2, 'the third still waits: two slots, both held')
  t.equal(await metricValue(r.gw.adminUrl as string, UPLOADS_WAITING), 1)
  for (const u of uploads) u.stream.end()
  t.same((await Promise.all(uploads.map(async u => await u.answer))).map(a => a.body), new Array(3).fill(digest(Buffer.alloc(2_048, 1))), 'each sent whole')
})

t.test('a request given an upload slot that finds its target\'s queue full is refused once (queue-full), not again when its wait would have run out', async t => {
  const r = await rig(t, 'connections: 1, requestBuffer: 1KiB, queue: { max: 0, timeout: 1s }', ', maxStreamingUploads: 1')
  const admin = r.gw.adminUrl as string
  const s = await session(t, r.h2c)
  const first = upload(s, '/first')
  first.stream.write(Buffer.alloc(2_048, 1))
  t.ok(await until(() => r.heads() === 1), 'the first holds the slot, and the only connection')
  const second = upload(s, '/second')
  second.stream.write(Buffer.alloc(2_048, 2))
  await sleep(200)
  // The first's body ends: the second takes its slot while the first still holds the connection.
  first.stream.end()
  t.match(await second.answer, { status: 503, body: /"upstream_busy"/ })
  t.equal(await metricValue(admin, BUSY('queue-full')), 1, 'refused: the target\'s queue is full')
  await first.answer
  await sleep(1_300)
  t.equal(await metricValue(admin, BUSY('queue-timeout')) + await metricValue(admin, BUSY('upload-slots')), 0, 'not refused a second time once queue.timeout has passed')
})

t.test('a client gone while its stream waits for an upload slot leaves no trace; a reset holder frees its slot', async t => {
  const r = await rig(t, 'connections: 10, requestBuffer: 1KiB, queue: { timeout: 10s }', ', maxStreamingUploads: 1')
  const s = await session(t, r.h2c)
  const first = upload(s, '/first')
  first.answer.catch(() => {})
  first.stream.write(Buffer.alloc(2_048, 1))
  t.ok(await until(() => r.heads() === 1 && r.open() === 1), 'the first holds the slot')
  const gone = upload(s, '/gone')
  gone.answer.catch(() => {})
  gone.stream.write(Buffer.alloc(2_048, 2))
  const next = upload(s, '/next')
  next.stream.write(Buffer.alloc(2_048, 3))
  await sleep(200)
  gone.stream.close()
  first.stream.close()
  t.ok(await until(() => r.heads() === 2), 'the slot goes to the live one')
  await sleep(100)
  t.equal(r.heads(), 2, 'the one gone is never sent')
  next.stream.end()
  t.same(await next.answer, { status: 200, body: digest(Buffer.alloc(2_048, 3)) })
})

t.test('a body waited for is the client\'s wait: its body timeout, and the route\'s request timeout (408), never the upstream\'s', async t => {
  let heads = 0
  const up = await startUpstream((req, res) => { heads++; req.resume(); req.on('end', () => res.end('ok')) })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 1s }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: slow, match: { path: /slow }, upstream: up, timeouts: { request: 500ms } }
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  // HTTP/2, no body sent: cut after clientTimeouts.body.
  const s = await session(t, gw.h2cUrl as string)
  const silent = upload(s, '/silent')
  silent.answer.catch(() => {})
  // HTTP/1.1, the head of 1 MB alone, on a route whose request timeout comes first: 408, the client's.
  const h1 = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => h1.destroy())
  h1.on('error', () => {})
  let answer = ''
  h1.on('data', (c: Buffer) => { answer += c.toString('latin1') })
  h1.write('POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n')
  t.ok(await until(() => answer.startsWith('HTTP/1.1 408 '), 3_000), 'the request timeout while its body is waited for: 408')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/silent' && l.error === 'client_body_timeout'), 3_000), 'no body within clientTimeouts.body: cut')
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/slow'), { status: 408, error: 'client_body_timeout' })
  t.equal(heads, 0, 'the upstream never contacted')
})

t.test('an interactive stream goes on at its first bytes: a message, then a wait for its answer (gRPC), over HTTP/2 and chunked HTTP/1.1', async t => {
  const r = await rig(t, 'connections: 2')
  const s = await session(t, r.h2c)
  const { stream } = upload(s, '/echo')
  let echoed = ''
  stream.on('data', (c: Buffer) => { echoed += c.toString() })
  stream.write('ping')
  t.ok(await until(() => echoed === 'ping', 3_000), 'HTTP/2: the message reached the upstream and its echo came back, the body still open')
  stream.end()
  const held = await chunkedHead(t, r.gw.url)
  let raw = ''
  held.on('data', (c: Buffer) => { raw += c.toString() })
  const echo = connect(Number(new URL(r.gw.url).port), '127.0.0.1')
  t.teardown(() => echo.destroy())
  await once(echo, 'connect')
  let echoRaw = ''
  echo.on('data', (c: Buffer) => { echoRaw += c.toString() })
  echo.write('POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npong\r\n')
  t.ok(await until(() => echoRaw.includes('pong'), 3_000), 'HTTP/1.1: likewise')
  t.equal(raw, '', 'a chunked head with no body begun is still held, unanswered')
})
