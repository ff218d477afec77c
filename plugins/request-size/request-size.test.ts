import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { until } from '../../test/helpers/wait.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { h2Connect, h2Request } from '../../test/helpers/http2.ts'
import { floodBody } from '../../test/helpers/raw-http.ts'

let requests = 0
let aborted = 0
const up = await startUpstream((req, res) => {
  requests++
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('close', () => { if (!req.complete) aborted++ })
  // /early answers before it reads the body, as an upstream may.
  if (req.url === '/early') res.writeHead(200, { 'content-type': 'text/plain' }).write('early')
  req.on('end', () => res.end(JSON.stringify({ length: Buffer.concat(chunks).length })))
})
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: limited
    match: { path: /* }
    upstream: up
    plugins:
      request-size: { maxBody: 1KiB, maxUrl: 64, maxHeaders: 10, maxHeaderBytes: 512 }
`, { admin: true })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** Sends `head`, then each of `parts` once the previous is written, and returns the raw answer. */
async function raw (head: string, parts: string[] = [], between: () => Promise<unknown> = async () => {}): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString() })
  socket.on('error', () => {})
  socket.write(head + '\r\n\r\n')
  for (const p of parts) { await between(); if (!socket.destroyed) socket.write(p) }
  await once(socket, 'close')
  return answer
}

t.test('Content-Length over maxBody: 413 at once, before any of the body is sent', async t => {
  const before = requests
  const answer = await raw('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000')
  t.match(answer, /^HTTP\/1.1 413 /)
  t.match(answer, /\r\nconnection: close\r\n/i)
  t.match(answer, /"error":"body_too_large","message":"the request body is larger than 1024 bytes"/)
  t.equal(requests, before, 'the upstream was not called')
})

t.test('bodies within the limit pass, with a length or chunked', async t => {
  const sized = await request(`${gw.url}/x`, { method: 'POST', body: 'a'.repeat(1024) })
  t.same(await sized.body.json(), { length: 1024 })
  const chunked = await request(`${gw.url}/x`, { method: 'POST', body: Readable.from(['a'.repeat(600), 'b'.repeat(424)]) })
  t.same(await chunked.body.json(), { length: 1024 })
})

t.test('a chunked body is cut at the limit: upstream aborted, 413 answered', async t => {
  const [before, abortedBefore] = [requests, aborted]
  const answer = await raw('POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked', ['200\r\n' + 'a'.repeat(512) + '\r\n', '400\r\n' + 'b'.repeat(1024) + '\r\n'],
    () => until(() => requests > before))
  t.match(answer, /^HTTP\/1.1 413 /)
  t.match(answer, /"error":"body_too_large","message":"the request body is larger than 1024 bytes"/)
  t.ok(await until(() => aborted > abortedBefore), 'the upstream request was aborted')
})

t.test('an upgrade with a body over maxBody or of unknown length (chunked): 413, never sent upstream', async t => {
  const before = requests
  const upgrade = 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'
  const sized = await raw(upgrade + 'Content-Length: 5000')
  t.match(sized, /^HTTP\/1.1 413 [^]*"error":"body_too_large","message":"the request body is larger than 1024 bytes"/)
  const chunked = await raw(upgrade + 'Transfer-Encoding: chunked', ['3\r\nabc\r\n0\r\n\r\n'])
  t.match(chunked, /^HTTP\/1.1 413 [^]*"error":"body_too_large","message":"an upgrade's body must declare its length \(Content-Length\), at most 1024 bytes"/)
  t.equal(requests, before, 'the upstream was not called')
})

t.test('a URL too long: 414; too many or too large headers: 431', async t => {
  const long = await request(`${gw.url}/${'a'.repeat(64)}`)
  t.equal(long.statusCode, 414)
  t.match(await long.body.json(), { error: 'url_too_long' })
  const ok = await request(`${gw.url}/${'a'.repeat(63)}`)
  t.equal(ok.statusCode, 200, 'a URL of exactly maxUrl bytes passes')
  await ok.body.dump()
  const many = await request(`${gw.url}/x`, { headers: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`x-h${i}`, '1'])) })
  t.equal(many.statusCode, 431)
  t.match(await many.body.json(), { error: 'headers_too_large' })
  const big = await request(`${gw.url}/x`, { headers: { 'x-big': 'v'.repeat(600) } })
  t.equal(big.statusCode, 431)
  await big.body.dump()
})

t.test('exactly maxHeaders headers and exactly maxHeaderBytes bytes of them pass; one more is refused with a message', async t => {
  // Host and Connection are headers too: 2 + 8 = 10.
  const head = (n: number, extra = '') => 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close' + Array.from({ length: n }, (_, i) => `\r\nx-h${i}: 1`).join('') + extra
  t.match(await raw(head(8)), /^HTTP\/1.1 200 /, '10 headers')
  const many = await raw(head(9))
  t.match(many, /^HTTP\/1.1 431 /, '11 headers')
  t.match(many, /"error":"headers_too_large","message":"the request has more than 10 headers or more than 512 bytes of them"/)
  // Names and values: Host x (5) + Connection close (15) + x-pad (5) and 487 bytes = 512.
  t.match(await raw(head(0, `\r\nx-pad: ${'v'.repeat(487)}`)), /^HTTP\/1.1 200 /, '512 bytes')
  t.match(await raw(head(0, `\r\nx-pad: ${'v'.repeat(488)}`)), /^HTTP\/1.1 431 /, '513 bytes')
  const long = await request(`${gw.url}/${'a'.repeat(64)}`)
  t.match(await long.body.json(), { error: 'url_too_long', message: 'the request URL is longer than 64 bytes' })
})

t.test('maxUrl counts the path and query of an absolute-form target, not its scheme and host', async t => {
  const get = (target: string) => raw(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close`)
  t.match(await get(`http://x.example/${'a'.repeat(63)}`), /^HTTP\/1.1 200 /, '64 bytes of path')
  t.match(await get(`http://x.example/?${'a'.repeat(62)}`), /^HTTP\/1.1 200 /, '64 bytes of path and query')
  t.match(await get(`http://x.example?${'a'.repeat(62)}`), /^HTTP\/1.1 200 /, 'an empty path is /')
  t.match(await get(`http://x.example/${'a'.repeat(64)}`), /^HTTP\/1.1 414 /, '65 bytes')
})

t.test('the authority of an absolute-form target counts as its Host field, in place of the Host sent', async t => {
  const authority = 'a'.repeat(188) + '.example.com' // 200 bytes
  const get = (host: string, pad: number) => raw(`GET http://${authority}/x HTTP/1.1${host}\r\nConnection: close\r\nx-pad: ${'v'.repeat(pad)}`)
  // As origin-form: Host and the authority (4 + 200) + Connection close (15) + x-pad (5) and 288 bytes = 512.
  t.match(await get('\r\nHost: x', 288), /^HTTP\/1.1 200 /, '512 bytes')
  t.match(await get('\r\nHost: x', 289), /^HTTP\/1.1 431 /, '513 bytes')
  t.match(await get(`\r\nHost: ${'h'.repeat(300)}`, 288), /^HTTP\/1.1 200 /, 'a longer Host sent is not counted')
  t.match(await get('', 289), /^HTTP\/1.1 431 /, 'no Host sent: the authority still counts')
  const fields = (n: number) => Array.from({ length: n }, (_, i) => `\r\nx-${i}: 1`).join('')
  const many = (n: number) => raw(`GET http://x/x HTTP/1.1${fields(n)}\r\nConnection: close`)
  t.match(await many(8), /^HTTP\/1.1 200 /, 'no Host sent: 8 fields, Connection and the authority: 10')
  t.match(await many(9), /^HTTP\/1.1 431 /, '11')
})

t.test('portcullis_request_size_refused_total counts each refusal by reason', async t => {
  const series = (reason: string) => `portcullis_request_size_refused_total{route="limited",reason="${reason}"}`
  const admin = gw.adminUrl as string
  // body: the Content-Length refusal, the chunked cut and the two upgrades; url: three; headers: seven (above).
  t.equal(await metricValue(admin, series('body')), 4)
  t.equal(await metricValue(admin, series('url')), 3)
  t.equal(await metricValue(admin, series('headers')), 7)
})

t.test('a chunked body counted on its way to an upstream that refuses the connection: 502, no refusal of the request', async t => {
  const dead = await startGateway(`
upstreams:
  down: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: limited, match: { path: /* }, upstream: down, plugins: { request-size: { maxBody: 1KiB } } }
`)
  t.teardown(() => dead.close())
  const res = await request(`${dead.url}/x`, { method: 'POST', body: Readable.from(['a'.repeat(100)]) })
  t.equal(res.statusCode, 502)
  t.match(await res.body.json(), { error: 'bad_gateway' })
})

t.test('a chunked body cut at the limit after the upstream has answered: the answer is broken off, no 413 after it', async t => {
  const abortedBefore = aborted
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString() })
  socket.on('error', () => {})
  socket.write('POST /early HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n' + 'a'.repeat(512) + '\r\n')
  t.ok(await until(() => answer.includes('early')), 'the upstream answered first')
  socket.write('400\r\n' + 'b'.repeat(1024) + '\r\n')
  // Reset (RST), not closed: see test/proxy/cut-response-reset.test.ts.
  await new Promise(resolve => socket.once('close', resolve))
  t.match(answer, /^HTTP\/1.1 200 /)
  t.notMatch(answer, /HTTP\/1\.1 413|body_too_large/, 'no second answer')
  t.notMatch(answer, /\r\n0\r\n\r\n$/, 'the answer does not end as if complete')
  t.ok(await until(() => aborted > abortedBefore), 'the upstream request was aborted')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/early' }), { status: 200, error: 'request_refused' }, 'logged as cut by the gateway, not as a client gone (499)')
})

t.test('over HTTP/2, headers are counted as over HTTP/1.1: no pseudo-headers but :authority as Host, cookie crumbs as one Cookie', async t => {
  const h2 = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: fields, match: { path: /fields }, upstream: up, plugins: { request-size: { maxHeaders: 3 } } }
  - { name: bytes, match: { path: /bytes/* }, upstream: up, plugins: { request-size: { maxHeaderBytes: 200 } } }
`)
  t.teardown(() => h2.close())
  const session = await h2Connect(h2.h2cUrl as string)
  t.teardown(() => session.destroy())
  const status = async (headers: Record<string, string | string[]>) => (await h2Request(session, headers)).status
  const crumbs = Array.from({ length: 8 }, (_, i) => `c${i}=${i}`)
  t.equal(await status({ ':path': '/fields' }), 200, 'no headers but the pseudo-headers: Host only')
  t.equal(await status({ ':path': '/fields', cookie: crumbs, 'x-a': '1' }), 200, '8 cookie crumbs, a header and Host: 3')
  t.equal(await status({ ':path': '/fields', cookie: crumbs, 'x-a': '1', 'x-b': '1' }), 431, 'one more: 4')
  // Host x (5) + Cookie, 8 crumbs of 4 joined with "; " (6 + 32 + 14 = 52) + x-pad (5): 62 bytes before its value.
  const path = `/bytes/${'a'.repeat(146)}`
  t.equal(await status({ ':path': path, ':authority': 'x', cookie: crumbs, 'x-pad': 'v'.repeat(138) }), 200, '200 bytes, a 153-byte path not counted')
  t.equal(await status({ ':path': path, ':authority': 'x', cookie: crumbs, 'x-pad': 'v'.repeat(139) }), 431, '201 bytes')
})

t.test('a plugin answering before maxBody is reached (request-termination): a chunked body is read 64 KiB past the answer at most, then the connection ends', async t => {
  const terminated = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: ended, match: { path: /* }, upstream: up, plugins: { request-size: { maxBody: 1KiB }, request-termination: { status: 503 } } }
`)
  t.teardown(() => terminated.close())
  const flood = 64 * 1024 * 1024 // more than the socket buffers of both ends hold
  const piece = Buffer.from(`10000\r\n${'a'.repeat(0x10000)}\r\n`)
  const res = await floodBody(Number(new URL(terminated.url).port), ['POST /x HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'], piece, flood)
  t.match(res.answer, /^HTTP\/1.1 503 /)
  t.ok(res.ended && res.sent < flood, `the connection ended, the body not read whole (${res.sent} bytes sent)`)
})
