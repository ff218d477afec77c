import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { parseConfig } from '../src/config/load.ts'
import { ConfigError, formatIssue } from '../src/config/config-error.ts'
import { catchAllYaml } from './helpers/catch-all.ts'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { floodBody, headerValues, rawRequest, rawThenAgain, type RawResponse } from './helpers/raw-http.ts'
import { until } from './helpers/wait.ts'
import { waitForLog } from './helpers/logs.ts'

interface Seen { method: string, url: string, headers: IncomingMessage['headers'], body: string, connection: number }

/**
 * An upstream that records every request it gets, with the number of the connection it came on,
 * and answers 200 "ok". An upgrade to `foo` is accepted (101) and echoed back.
 */
async function recordingUpstream (t: Test): Promise<{ url: string, seen: Seen[] }> {
  const seen: Seen[] = []
  const ids = new WeakMap<Socket, number>()
  let next = 0
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      seen.push({ method: req.method as string, url: req.url as string, headers: req.headers, body: Buffer.concat(chunks).toString(), connection: ids.get(req.socket) as number })
      res.end('ok')
    })
  })
  server.on('connection', (s: Socket) => ids.set(s, ++next))
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    seen.push({ method: req.method as string, url: req.url as string, headers: req.headers, body: '', connection: ids.get(socket) as number })
    if (req.headers.upgrade !== 'foo') { socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n'); return }
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n')
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

async function gateway (t: Test, route = '', server = ''): Promise<{ gw: TestGateway, port: number, seen: Seen[] }> {
  const up = await recordingUpstream(t)
  const gw = await startGateway(catchAllYaml(up.url, { route, server }))
  t.teardown(() => gw.close())
  return { gw, port: Number(new URL(gw.url).port), seen: up.seen }
}

/** The JSON error `res` carries, checked for our shape, and its request id logged as rejected. */
function checkError (t: Test, gw: TestGateway, res: RawResponse, status: number, error: string, name: string): void {
  t.equal(res.status, status, `${name}: status`)
  const id = headerValues(res, 'x-request-id')[0]
  t.match(JSON.parse(res.body), { error, message: String, requestId: id }, `${name}: our error body`)
  t.ok(gw.logs.some(l => l.msg === 'request rejected' && l.requestId === id && l.status === status), `${name}: logged`)
}

t.test('framing the upstream could read differently is refused before routing, and never forwarded', async t => {
  const { gw, port, seen } = await gateway(t)
  const cases = [
    // No Connection: close anywhere: whether the connection is kept or closed is the gateway's choice.
    { name: 'two Host fields', lines: ['GET /a HTTP/1.1', 'Host: a.example', 'Host: b.example'], status: 400, error: 'bad_host', close: false },
    { name: 'Host twice, other case', lines: ['GET /a HTTP/1.1', 'Host: a.example', 'HOST: a.example'], status: 400, error: 'bad_host', close: false },
    { name: 'a fragment in the target', lines: ['GET /a#admin HTTP/1.1', 'Host: a'], status: 400, error: 'bad_request', close: false },
    { name: 'a fragment in the query', lines: ['GET /a?x=1#y HTTP/1.1', 'Host: a'], status: 400, error: 'bad_request', close: false },
    { name: 'gzip, chunked', lines: ['POST /a HTTP/1.1', 'Host: a', 'Transfer-Encoding: gzip, chunked'], body: '5\r\nhello\r\n0\r\n\r\n', status: 501, error: 'unsupported_transfer_coding', close: true },
    { name: 'two Transfer-Encoding fields', lines: ['POST /a HTTP/1.1', 'Host: a', 'Transfer-Encoding: deflate', 'Transfer-Encoding: chunked'], body: '5\r\nhello\r\n0\r\n\r\n', status: 501, error: 'unsupported_transfer_coding', close: true },
    { name: 'chunked twice', lines: ['POST /a HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked, chunked'], body: '5\r\nhello\r\n0\r\n\r\n', status: 400, error: 'bad_request', close: true },
    { name: 'HTTP/1.0 with Transfer-Encoding', lines: ['POST /a HTTP/1.0', 'Host: a', 'Connection: keep-alive', 'Transfer-Encoding: chunked'], body: '5\r\nhello\r\n0\r\n\r\n', status: 400, error: 'bad_request', close: true }
  ]
  const next = ['GET /next HTTP/1.1', 'Host: a', 'Connection: close']
  for (const c of cases) {
    const { first, second } = await rawThenAgain(port, c.lines, c.body ?? '', next)
    checkError(t, gw, first, c.status, c.error, c.name)
    if (c.close) {
      t.same(headerValues(first, 'connection'), ['close'], `${c.name}: the connection is closed`)
      t.equal(second, 'closed', `${c.name}: nothing more is read on it`)
    } else {
      t.equal(second === 'closed' ? 'closed' : second.status, 200, `${c.name}: the connection is kept, the next request served`)
    }
  }
  t.same(seen.map(s => s.url), ['/next', '/next', '/next', '/next'], 'the upstream got none of them, only the requests after them')
  // The plain case still goes through, chunked included, and a field as long as Host is not a second Host.
  const ok = await rawRequest(port, ['POST /a HTTP/1.1', 'Host: a', 'From: ops@example.com', 'Transfer-Encoding: Chunked', 'Connection: close'], '5\r\nhello\r\n0\r\n\r\n')
  t.equal(ok.status, 200)
  t.equal(seen[4]?.body, 'hello')
})

t.test('CONNECT is answered with our JSON error, not dropped', async t => {
  const { gw, port, seen } = await gateway(t)
  const res = await rawRequest(port, ['CONNECT internal.example:443 HTTP/1.1', 'Host: internal.example:443'])
  checkError(t, gw, res, 501, 'not_implemented', 'CONNECT')
  t.same(seen, [])
})

t.test('TRACE is refused on a route without methods', async t => {
  const open = await gateway(t)
  const refused = await rawRequest(open.port, ['TRACE /a HTTP/1.1', 'Host: a', 'Connection: close'])
  checkError(t, open.gw, refused, 405, 'method_not_allowed', 'TRACE on a route without methods')
  t.same(open.seen, [])
})

t.test('TRACE goes through where the route\'s methods name it', async t => {
  const up = await recordingUpstream(t)
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: traced
    match: { path: /debug/*, methods: [TRACE] }
    upstream: up
  - name: all
    match: { path: /* }
    upstream: up
`)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  t.equal((await rawRequest(port, ['TRACE /debug/x HTTP/1.1', 'Host: a', 'Connection: close'])).status, 200)
  t.equal((await rawRequest(port, ['TRACE /other HTTP/1.1', 'Host: a', 'Connection: close'])).status, 405)
  t.same(up.seen.map(s => `${s.method} ${s.url}`), ['TRACE /debug/x'])
})

t.test('Upgrade: websocket by default, other protocols where the route names them, h2c never', async t => {
  const plain = await gateway(t)
  const h2c = ['GET /a HTTP/1.1', 'Host: a', 'Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA']
  checkError(t, plain.gw, await rawRequest(plain.port, h2c), 400, 'upgrade_refused', 'h2c')
  checkError(t, plain.gw, await rawRequest(plain.port, ['GET /a HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: foo']), 400, 'upgrade_refused', 'foo by default')
  t.same(plain.seen, [], 'the upstream saw neither')

  const foo = await gateway(t, '    upgrade: [websocket, foo]\n')
  checkError(t, foo.gw, await rawRequest(foo.port, h2c), 400, 'upgrade_refused', 'h2c on a route with upgrade')
  checkError(t, foo.gw, await rawRequest(foo.port, ['GET /a HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: foo, h2c']), 400, 'upgrade_refused', 'h2c offered beside foo')
  // The named protocol is tunnelled: the upstream's 101, then bytes both ways.
  const tunnel = await new Promise<string>((resolve, reject) => {
    let got = ''
    const s = connect(foo.port, '127.0.0.1')
    s.on('error', reject)
    s.on('data', (c: Buffer) => {
      got += c.toString('latin1')
      if (got.includes('\r\n\r\n') && !got.includes('ping')) s.write('ping')
      if (got.endsWith('ping')) { s.destroy(); resolve(got) }
    })
    s.write('GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
  })
  t.match(tunnel, /^HTTP\/1\.1 101 /)
  t.same(foo.seen.map(s => s.headers.upgrade), ['foo'])
})

t.test('route upgrade: h2c is a config error at its key', async t => {
  const text = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: up
    upgrade: [websocket, h2c]
`
  try {
    await parseConfig(text, 'gw.yaml', {})
    t.fail('accepted')
  } catch (err) {
    t.ok(err instanceof ConfigError)
    t.match((err as ConfigError).issues.map(formatIssue), [/^gw\.yaml:9:26 routes\[0\]\.upgrade\[1\]: must be an Upgrade protocol/])
  }
})

t.test('headers taken as the path or the method (X-Original-URL, X-HTTP-Method-Override...) are removed by default, _ spellings too; removeRequestHeaders decides', async t => {
  const defaults = ['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override']
  // A CGI, WSGI or PHP upstream reads X_Original_URL as X-Original-URL (HTTP_X_ORIGINAL_URL).
  const spelled = ['x_original_url', 'x-original_url', 'x_rewrite_url', 'x_http_method_override', 'x-http_method']
  const headers = Object.fromEntries([...defaults, ...spelled].map(h => [h, h.includes('method') ? 'DELETE' : '/admin']))
  const strict = await gateway(t)
  await (await request(`${strict.gw.url}/a`, { method: 'POST', headers: { ...headers, 'x-other': 'kept' } })).body.text()
  for (const name of [...defaults, ...spelled]) t.equal(strict.seen[0]?.headers[name], undefined, name)
  t.equal(strict.seen[0]?.headers['x-other'], 'kept')

  const server = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  removeRequestHeaders: [X-Internal-Token]\n'
  const custom = await gateway(t, '', server)
  await (await request(`${custom.gw.url}/a`, { headers: { ...headers, 'x-internal-token': 'secret', x_internal_token: 'secret', 'x_internal-token': 'secret' } })).body.text()
  t.equal(custom.seen[0]?.headers['x-original-url'], '/admin', 'the list replaces the default')
  for (const name of ['x-internal-token', 'x_internal_token', 'x_internal-token']) t.equal(custom.seen[0]?.headers[name], undefined, name)
})

t.test('after a GET or HEAD with a body, the upstream connection is not reused', async t => {
  const { gw, port, seen } = await gateway(t)
  const plain = async (path: string) => (await request(`${gw.url}${path}`)).body.text()
  await plain('/1')
  await plain('/2')
  await rawRequest(port, ['GET /3 HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Connection: close'], 'hello')
  await plain('/4')
  await rawRequest(port, ['POST /5 HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Connection: close'], 'hello')
  await plain('/6')
  await rawRequest(port, ['GET /7 HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked', 'Connection: close'], '5\r\nhello\r\n0\r\n\r\n')
  await plain('/8')
  t.same(seen.map(s => [s.url, s.connection, s.body]), [
    ['/1', 1, ''],
    ['/2', 1, ''],
    ['/3', 1, 'hello'],
    ['/4', 2, ''], // a new connection after the GET with a body
    ['/5', 2, 'hello'],
    ['/6', 2, ''], // a POST's body is its own: the connection stays
    ['/7', 2, 'hello'],
    ['/8', 3, '']
  ])
})

t.test('passed on deliberately: double encoding, Unicode dot look-alikes and case reach the upstream unchanged', async t => {
  const { port, seen } = await gateway(t)
  for (const path of ['/a/%252e%252e/admin', '/a/%E2%80%A4%E2%80%A4/admin', '/a/%EF%BC%8E%EF%BC%8E/admin', '/A/Admin']) {
    t.equal((await rawRequest(port, [`GET ${path} HTTP/1.1`, 'Host: a', 'Connection: close'])).status, 200, path)
  }
  t.same(seen.map(s => s.url), ['/a/%252e%252e/admin', '/a/%E2%80%A4%E2%80%A4/admin', '/a/%EF%BC%8E%EF%BC%8E/admin', '/A/Admin'])
})

t.test('an upstream\'s informational responses (102, 103) are not taken for its answer', async t => {
  const up = await startUpstream((_req, res) => {
    res.writeProcessing()
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    setTimeout(() => res.writeHead(201, { 'content-type': 'text/plain' }).end('made'), 10)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(catchAllYaml(up.url, {}))
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/x`)
  t.same([res.statusCode, res.headers['content-type'], await res.body.text()], [201, 'text/plain', 'made'])
})

/** A raw connection to the gateway and what it receives. */
async function rawConnection (port: number): Promise<{ socket: Socket, received: () => string }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await once(socket, 'connect')
  return { socket, received: () => Buffer.concat(chunks).toString('latin1') }
}

t.test('a client that closes its side mid-body gets no answer of its own: one access line (499), no "request rejected"', async t => {
  const { gw, port } = await gateway(t)
  const { socket, received } = await rawConnection(port)
  socket.write('POST /partial HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n' + 'a'.repeat(10))
  t.ok(await until(() => gw.gateway.runtime.inFlight === 1), 'the request is under way')
  socket.end()
  await once(socket, 'close')
  t.equal(received(), '', 'nothing answered')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/partial' }), { status: 499 })
  t.notOk(gw.logs.some(l => l.msg === 'request rejected'), 'no second line with an id of its own')
})

t.test('a body left unread by an early answer, then cut short by the client, is no new request: no 400, no "request rejected"', async t => {
  const { gw, port } = await gateway(t, '    plugins: { request-termination: { status: 401 } }')
  const metrics = gw.metrics.requests.requests
  const { socket, received } = await rawConnection(port)
  socket.write('POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n' + 'a'.repeat(10))
  t.ok(await until(() => /^HTTP\/1\.1 401 [^]*\r\n\r\n/.test(received())), 'answered at once')
  t.match(received(), /connection: keep-alive/i, 'the connection kept: Node discards the rest of the body')
  socket.end()
  await once(socket, 'close')
  t.equal(received().match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer only')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/early' }), { status: 401 })
  t.notOk(gw.logs.some(l => l.msg === 'request rejected'), 'no line for the end of the body')
  t.same((await metrics.get()).values.filter(v => v.labels.route === '(unmatched)'), [], 'nothing counted as unmatched')
})

/** A chunk of 64 KiB of a chunked body, and as many bytes of a body framed by its Content-Length. */
const CHUNK = Buffer.from(`10000\r\n${'a'.repeat(0x10000)}\r\n`)
const BYTES = Buffer.alloc(0x10000, 'a')
/** More than the socket buffers of both ends hold: a gateway that stops reading never takes it all. */
const FLOOD = 64 * 1024 * 1024

t.test('a body left unread is read on for 64 KiB at most: a longer Content-Length is answered Connection: close, a chunked body\'s connection ends past 64 KiB', async t => {
  const { port, seen } = await gateway(t, '    plugins: { request-termination: { status: 503, body: unavailable } }')
  const long = await floodBody(port, ['POST /long HTTP/1.1', 'Host: a', 'Content-Length: 2000000000'], BYTES, FLOOD)
  t.match(long.answer, /^HTTP\/1\.1 503 [^]*\r\nConnection: close\r\n/i, 'a Content-Length past the bound: the answer says close')
  t.ok(long.ended && long.sent < FLOOD, `the connection ended, the body not read on (${long.sent} bytes sent)`)
  const chunked = await floodBody(port, ['POST /chunked HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked'], CHUNK, FLOOD)
  t.match(chunked.answer, /^HTTP\/1\.1 503 [^]*\r\nConnection: keep-alive\r\n/i, 'a chunked body\'s size is unknown: its answer keeps the connection')
  t.ok(chunked.ended && chunked.sent < FLOOD, `the connection ended past 64 KiB of it (${chunked.sent} bytes sent)`)
  // A small body left unread costs no new connection, whatever its framing.
  const next = ['GET /next HTTP/1.1', 'Host: a', 'Connection: close']
  for (const [name, lines, body] of [
    ['Content-Length of 64 KiB', ['POST /sized HTTP/1.1', 'Host: a', `Content-Length: ${BYTES.length}`], BYTES.toString()],
    ['chunked', ['POST /small HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n']
  ] as const) {
    const { first, second } = await rawThenAgain(port, [...lines], body, next)
    t.equal(first.status, 503, name)
    t.equal(second === 'closed' ? 'closed' : second.status, 503, `${name}: the connection serves on`)
  }
  t.same(seen, [], 'nothing reached the upstream')
})

t.test('a body left unread by a gateway error (an upstream that cannot be reached) is bounded the same way', async t => {
  const gw = await startGateway(catchAllYaml('http://127.0.0.1:1'))
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const long = await floodBody(port, ['POST /long HTTP/1.1', 'Host: a', 'Content-Length: 2000000000'], BYTES, FLOOD)
  t.match(long.answer, /^HTTP\/1\.1 502 [^]*\r\nconnection: close\r\n/i, 'a Content-Length past the bound: the answer says close')
  t.ok(long.ended && long.sent < FLOOD, `the connection ended, the body not read on (${long.sent} bytes sent)`)
  const chunked = await floodBody(port, ['POST /chunked HTTP/1.1', 'Host: a', 'Transfer-Encoding: chunked'], CHUNK, FLOOD)
  t.match(chunked.answer, /^HTTP\/1\.1 502 /, 'chunked: answered')
  t.ok(chunked.ended && chunked.sent < FLOOD, `the connection ended past 64 KiB of it (${chunked.sent} bytes sent)`)
})

t.test('after an answer that says close, a request pipelined behind the unread body is not served', async t => {
  const { gw, port, seen } = await gateway(t, '    plugins: { redirect: { to: "/x/*", status: 307 } }')
  // Half-open: it sends on after the gateway's end, as a client already sending would.
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
  socket.on('error', () => {})
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.write('POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n' + 'a'.repeat(100)) // 64 KiB < the rest
  t.ok(await until(() => /^HTTP\/1\.1 307 [^]*\r\n\r\n/.test(received)), 'answered at once')
  t.match(received, /\r\nConnection: close\r\n/i)
  socket.write('a'.repeat(100000 - 100) + 'GET /second HTTP/1.1\r\nHost: a\r\n\r\n')
  // Closed after a linger (2 s; at most 10 s on a loaded machine): a write then fails (empty lines: what a parser skips between requests).
  t.ok(await until(() => { if (!socket.destroyed) socket.write('\r\n'); return socket.destroyed }, 10_000), 'the gateway closed the connection')
  t.equal(received.match(/^HTTP\/1\.1 /gm)?.length, 1, 'one answer only')
  t.same(gw.logs.filter(l => l.msg === 'request').map(l => l.path), ['/first'], 'the second request was not taken')
  t.same(seen, [])
})

t.test('a chunked body Node cannot parse gets its own 400, the connection closed, the upstream try aborted; logged 400, not 499', async t => {
  const { gw, port, seen } = await gateway(t)
  const bodies: Record<string, string> = {
    negative: '-5\r\nhello\r\n0\r\n\r\n',
    hex: '0x5\r\nhello\r\n0\r\n\r\n',
    space: '5 \r\nhello\r\n0\r\n\r\n',
    huge: 'FFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n',
    lf: '5\nhello\n0\n\n',
    later: '5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n',
    nocrlf: '5\r\nhelloX\r\n0\r\n\r\n',
    trailer: '5\r\nhello\r\n0\r\ncontent-length: 5\r\n\r\n'
  }
  for (const [name, body] of Object.entries(bodies)) {
    const res = await answered(port, [`POST /chunked/${name} HTTP/1.1`, 'Host: a', 'Transfer-Encoding: chunked'], undefined, body)
    t.equal(res.status, 400, `${name}: 400`)
    t.same(headerValues(res, 'connection'), ['close'], `${name}: the connection closes`)
    t.match(JSON.parse(res.body), { error: 'bad_request', requestId: headerValues(res, 'x-request-id')[0] }, `${name}: our error`)
    t.match(await waitForLog(gw.logs, { msg: 'request', path: `/chunked/${name}` }), { status: 400, error: 'bad_request' }, `${name}: logged`)
  }
  t.notOk(gw.logs.some(l => l.msg === 'request rejected'), 'no second line')
  t.same(seen.filter(s => s.url.startsWith('/chunked/')), [], 'no upstream request completed')
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'nothing held in flight')
})

t.test('a chunked body Node cannot parse once the answer has begun: cut, logged with the status sent and bad_request, not 499', async t => {
  const up = await startUpstream((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }).write('early') })
  t.teardown(() => up.close())
  const gw = await startGateway(catchAllYaml(up.url))
  t.teardown(() => gw.close())
  const { socket, received } = await rawConnection(Number(new URL(gw.url).port))
  socket.write('POST /begun HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n')
  t.ok(await until(() => received().includes('early')), 'the answer has begun')
  socket.write('zz\r\n')
  // Reset (RST), not closed: see test/proxy/cut-response-reset.test.ts.
  await new Promise(resolve => socket.once('close', resolve))
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/begun' }), { status: 200, error: 'bad_request' })
})

t.test('unreadable bytes pipelined behind a request under way are answered after it, not ahead of it', async t => {
  const { gw, port } = await gateway(t)
  const { socket, received } = await rawConnection(port)
  socket.write('POST /first HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloNOT A REQUEST LINE\r\n\r\n')
  await once(socket, 'close')
  t.notMatch(received(), /^HTTP\/1\.1 400/, 'no 400 read as the answer to the first request')
  t.match(received(), /^HTTP\/1\.1 (?!400)\d{3} [^]*HTTP\/1\.1 400 /, 'the first request\'s answer, then the 400')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/first')), 'the first request logged')
  t.match(gw.logs.filter(l => l.msg === 'request rejected'), [{ status: 400, error: 'bad_request' }], 'the unreadable bytes answered after it, logged once')
})

/** rawRequest, failed after `ms` when no answer has come (a request left unanswered would hang the test; 10 s: room for a loaded machine). */
async function answered (port: number, lines: string[], ms = 10_000, body = ''): Promise<RawResponse> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms) })
  try {
    return await Promise.race([rawRequest(port, lines, body), timeout])
  } finally {
    clearTimeout(timer)
  }
}

t.test('an HTTP/2.0 or HTTP/0.9 request line on HTTP/1 gets 505, the connection closed, and nothing is held in flight', async t => {
  const { gw, port, seen } = await gateway(t)
  for (const version of ['HTTP/2.0', 'HTTP/0.9']) {
    // No Connection: close: the gateway closes it.
    const res = await answered(port, [`GET /a ${version}`, 'Host: a'])
    checkError(t, gw, res, 505, 'http_version_not_supported', version)
    t.same(headerValues(res, 'connection'), ['close'], `${version}: the connection is closed`)
    t.match(gw.logs.find(l => l.msg === 'request rejected' && l.status === 505 && l.protocol === version), { method: 'GET', path: '/a' }, `${version}: logged as sent`)
  }
  t.equal(gw.gateway.runtime.inFlight, 0)
  t.same(seen, [], 'the upstream saw none')
})

t.test('a failure of the gateway while starting a request is answered with 500 and never held in flight', async t => {
  const { gw, port } = await gateway(t)
  const runtime = gw.gateway.runtime
  // Before the exchange: routing itself fails.
  const match = runtime.router.match.bind(runtime.router)
  runtime.router.match = () => { throw new Error('routing broke') }
  checkError(t, gw, await answered(port, ['GET /a HTTP/1.1', 'Host: a']), 500, 'internal_error', 'routing failed')
  runtime.router.match = match
  // In the exchange's start: its route's pipeline fails to give its hooks.
  Object.defineProperty(runtime.routes[0]?.pipeline, 'requestHooks', { get () { throw new Error('hooks broke') } })
  const res = await answered(port, ['GET /b HTTP/1.1', 'Host: a', 'Connection: close'])
  t.equal(res.status, 500)
  t.match(JSON.parse(res.body), { error: 'internal_error' })
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/b' }), { status: 500 }, 'the exchange logged as any other')
  t.equal(gw.logs.filter(l => l.msg === 'request failed in the gateway').length, 2, 'both failures logged as errors')
  t.ok(await until(() => runtime.inFlight === 0), 'nothing left in flight')
})

t.test('Host must be a host name, an IPv4 address or a bracketed IPv6 one, with an optional port', async t => {
  const up = await recordingUpstream(t)
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
consumers:
  - id: ops
    credentials: { key-auth: { keys: [ "s3cret-key-0123456789" ] } }
routes:
  - name: public
    match: { host: public.example.com, path: /* }
    upstream: up
  - name: admin
    match: { host: admin.example.com, path: /* }
    upstream: up
    plugins: { key-auth: {} }
  - name: apps
    match: { host: "*.apps.example.com", path: /* }
    upstream: up
  - name: any
    match: { path: /* }
    upstream: up
`)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const refused = [
    'public.example.com:x@admin.example.com', // URL parsers read admin.example.com
    'public.example.com@admin.example.com',
    'evil.com/.apps.example.com',
    'evil.com?.apps.example.com',
    'evil.com#.apps.example.com',
    '.apps.example.com',
    'a..apps.example.com',
    'a.apps.example.com..',
    'a b/c?d',
    'a.example.com:123456',
    'a.example.com:80:80',
    '[::1',
    '[::1]x',
    ''
  ]
  for (const host of refused) {
    checkError(t, gw, await answered(port, ['GET /x HTTP/1.1', `Host: ${host}`, 'Connection: close']), 400, 'bad_host', JSON.stringify(host))
  }
  checkError(t, gw, await answered(port, ['GET /x HTTP/1.1', 'Connection: close']), 400, 'bad_host', 'no Host on HTTP/1.1')
  checkError(t, gw, await answered(port, ['GET http://ops@admin.example.com/x HTTP/1.1', 'Host: admin.example.com', 'Connection: close']), 400, 'bad_host', 'userinfo in an absolute-form target')
  t.same(up.seen, [], 'none reached the upstream')

  const accepted: ReadonlyArray<readonly [string, number]> = [
    ['one.apps.example.com', 200],
    ['One.Apps.Example.com.:8080', 200],
    ['public.example.com:80', 200],
    ['admin.example.com', 401], // routed to admin, whose key-auth refuses
    ['x_y-z.internal', 200],
    ['127.0.0.1:8080', 200],
    ['[::1]:8080', 200],
    ['[2001:db8::1]', 200]
  ]
  for (const [host, status] of accepted) {
    t.equal((await answered(port, ['GET /ok HTTP/1.1', `Host: ${host}`, 'Connection: close'])).status, status, host)
  }
  t.equal((await answered(port, ['GET /ok HTTP/1.0'])).status, 200, 'HTTP/1.0 needs no Host')
  t.equal(up.seen.length, accepted.filter(([, s]) => s === 200).length + 1, 'each one accepted reached the upstream')
})

t.test('Expect other than 100-continue: 417 in JSON, logged; the connection serves on', async t => {
  const { gw, port, seen } = await gateway(t)
  const { first, second } = await rawThenAgain(port, ['GET /a HTTP/1.1', 'Host: a', 'Expect: nope'], '', ['GET /next HTTP/1.1', 'Host: a', 'Connection: close'])
  checkError(t, gw, first, 417, 'expectation_failed', 'Expect: nope')
  t.equal(second === 'closed' ? 'closed' : second.status, 200)
  t.same(seen.map(s => s.url), ['/next'])
})
