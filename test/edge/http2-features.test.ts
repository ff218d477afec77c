import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Writable } from 'node:stream'
import { constants, type ClientHttp2Stream } from 'node:http2'
import { Agent, request } from 'undici'
import { startUpstream, echo } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { echoed, gatewayYaml, h2Request, startH2Gateway, type H2Response } from '../helpers/http2.ts'

const KEY = 'an-api-key-for-h2-tests-0001'

/** Each plugin kind on a route of its own: auth (key-auth), rate-limit, cache, compress. */
const pluginRoutes = (upstream: string) => `consumers:
  - { id: h2-client, credentials: { key-auth: { keys: [ "${KEY}" ] } } }
upstreams:
  up: { targets: [ { url: "${upstream}" } ] }
routes:
  - { name: auth, match: { path: /auth }, upstream: up, plugins: { key-auth: {} } }
  - name: limited
    match: { path: /limited/* }
    upstream: up
    plugins: { rate-limit: { by: [ 'header:x-client' ], limits: [ { name: two, requests: 2, window: 1m } ] } }
  - { name: cached, match: { path: /cached/* }, upstream: up, plugins: { cache: {} } }
  - { name: compressed, match: { path: /compressed }, upstream: up, plugins: { compress: { encodings: [gzip] } } }
  - { name: corrupt, match: { path: /corrupt }, upstream: up, plugins: { compress: {} } }
`

/** The echo upstream, except /cached/* (cacheable, counted), /compressed (4 KiB of JSON) and /corrupt (gzip that is not). */
async function pluginUpstream (t: Test): Promise<{ url: string, cachedHits: () => number }> {
  let cachedHits = 0
  const up = await startUpstream((req, res) => {
    if (req.url?.startsWith('/cached/') === true) {
      cachedHits++
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end(`fresh ${cachedHits}`)
    } else if (req.url === '/corrupt') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end('not gzip at all')
    } else if (req.url === '/compressed') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => `item number ${i}`) }))
    } else echo(req, res)
  })
  t.teardown(() => up.close())
  return { url: up.url, cachedHits: () => cachedHits }
}

/** A request as both HTTP/2 clients make it: Node's http2 session or undici with allowH2. */
type Call = (path: string, headers?: Record<string, string>) => Promise<H2Response>

t.test('every plugin kind over HTTP/2, with Node\'s http2 client and undici allowH2', async t => {
  const up = await pluginUpstream(t)
  const { gw, ca, connect } = await startH2Gateway(t, 'true', pluginRoutes(up.url))
  const session = await connect()
  const agent = new Agent({ allowH2: true, connect: { ca: ca.cert } })
  t.teardown(() => agent.close())
  const clients: Array<[string, Call]> = [
    ['node:http2', (path, headers = {}) => h2Request(session, { ':path': path, ...headers })],
    ['undici', async (path, headers = {}) => {
      const res = await request(`${gw.url}${path}`, { dispatcher: agent, headers })
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) }
    }]
  ]
  for (const [client, call] of clients) {
    t.equal((await call('/auth')).status, 401, `${client}: key-auth refuses without a key`)
    const authed = await call('/auth', { 'x-api-key': KEY })
    t.equal(authed.status, 200, `${client}: key-auth accepts the key`)
    t.equal(echoed(authed).headers['x-consumer-id'], 'h2-client')

    const limit = () => call('/limited/x', { 'x-client': client })
    const limited = [await limit(), await limit(), await limit()]
    t.same(limited.map(r => r.status), [200, 200, 429], `${client}: rate-limit allows two, then 429`)

    const first = await call(`/cached/${client}`)
    const second = await call(`/cached/${client}`)
    t.equal(first.body.toString(), second.body.toString(), `${client}: cache answers the second from the first`)
    t.match(String(second.headers['cache-status']), /hit/, `${client}: Cache-Status hit`)

    const compressed = await call('/compressed', { 'accept-encoding': 'gzip' })
    t.equal(compressed.headers['content-encoding'], 'gzip', `${client}: compress`)
    t.equal((JSON.parse(gunzipSync(compressed.body).toString()) as { items: string[] }).items[199], 'item number 199')

    // Decoded for a client that does not take gzip: corrupt from the first byte, answered in place of the held head.
    const corrupt = await call('/corrupt')
    t.same([corrupt.status, (JSON.parse(corrupt.body.toString()) as { error: string }).error, corrupt.headers['content-encoding']], [502, 'bad_gateway', undefined], `${client}: a body that does not decode is a 502`)
  }
  t.equal(up.cachedHits(), 2, 'the upstream was asked once per cached path')
  t.equal(gw.logs.filter(l => l.msg === 'request' && l.protocol === 'HTTP/2').length, 2 * 9, 'every request logged as HTTP/2')
  t.equal(gw.logs.filter(l => l.msg === 'request' && l.protocol !== 'HTTP/2').length, 0)
})

t.test('reload: an open HTTP/2 connection uses the new config at once; a stream in flight finishes', async t => {
  const held: ServerResponse[] = []
  const up = await startUpstream((req, res) => { if (req.url === '/hold') held.push(res); else echo(req, res) })
  t.teardown(() => up.close())
  const config = (generation: string) => `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: all
    match: { path: /* }
    upstream: up
    plugins: { request-headers: { set: { x-generation: "${generation}" } } }
`
  const { gw, file, connect } = await startH2Gateway(t, 'true', config('one'))
  const session = await connect()
  t.equal(echoed(await h2Request(session, { ':path': '/a' })).headers['x-generation'], 'one')
  const inflight = h2Request(session, { ':path': '/hold' })
  await until(() => held.length === 1)

  writeFileSync(file, gatewayYaml('true', config('two')))
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  t.equal(echoed(await h2Request(session, { ':path': '/b' })).headers['x-generation'], 'two', 'same connection, new config')
  ;(held[0] as ServerResponse).end('held until after the reload')
  t.equal((await inflight).body.toString(), 'held until after the reload')
  t.notOk(session.closed, 'the connection stays open')
})

const MiB = 1024 * 1024

/** A chunk of `size` bytes whose content depends on its index (so a lost or repeated chunk shows). */
const chunk = (i: number, size: number) => Buffer.alloc(size, i % 251)

/** Writes `total` bytes in chunks to `out` as fast as it takes them (counted in `written`), then ends it. */
function pump (out: Writable, total: number, size: number, written: { bytes: number }): void {
  while (written.bytes < total) {
    const ok = out.write(chunk(written.bytes / size, size))
    written.bytes += size
    if (!ok) { out.once('drain', () => pump(out, total, size, written)); return }
  }
  out.end()
}

/** Polls until `value()` has not changed for 300 ms (at most 10 s). */
async function settled (value: () => number): Promise<number> {
  let last = value()
  let since = performance.now()
  await until(() => {
    const now = value()
    if (now !== last) { last = now; since = performance.now() }
    return performance.now() - since >= 300
  }, 10_000)
  return last
}

t.test('flow control, response: a slow reader holds the upstream back; nothing is lost', async t => {
  const TOTAL = 64 * MiB
  const CHUNK = 64 * 1024
  const written = { bytes: 0 }
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }) // chunked: streamed, not buffered
    pump(res, TOTAL, CHUNK, written)
  })
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url))
  const session = await connect()
  const stream: ClientHttp2Stream = session.request({ ':path': '/big' })
  stream.pause()
  await new Promise(resolve => stream.once('response', resolve))
  const held = await settled(() => written.bytes)
  t.ok(held < TOTAL / 2, `while the client does not read, the upstream has sent ${(held / MiB).toFixed(1)} MiB of ${TOTAL / MiB}`)
  let received = 0
  let intact = true
  let pending: Buffer = Buffer.alloc(0)
  stream.on('data', (c: Buffer) => {
    pending = pending.length === 0 ? c : Buffer.concat([pending, c])
    while (pending.length >= CHUNK) {
      if (!pending.subarray(0, CHUNK).equals(chunk(received / CHUNK, CHUNK))) intact = false
      received += CHUNK
      pending = pending.subarray(CHUNK)
    }
  })
  stream.resume()
  await new Promise(resolve => stream.once('end', resolve))
  t.equal(received + pending.length, TOTAL, 'every byte arrives')
  t.ok(intact, 'in order')
})

t.test('flow control, request: an upstream that does not read holds the client back; nothing is lost', async t => {
  const TOTAL = 64 * MiB
  const CHUNK = 64 * 1024
  let upstreamGot = 0
  let upstreamReq: IncomingMessage | undefined
  const up = await startUpstream((req, res) => {
    // Reads the first chunk, then nothing until resumed.
    req.on('data', (c: Buffer) => { upstreamGot += c.length; if (upstreamReq === undefined) { upstreamReq = req; req.pause() } })
    req.on('end', () => res.end(String(upstreamGot)))
  })
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url))
  const session = await connect()
  const stream = session.request({ ':path': '/upload', ':method': 'POST' })
  const sent = { bytes: 0 }
  pump(stream, TOTAL, CHUNK, sent)
  await until(() => upstreamReq !== undefined, 10_000)
  const held = await settled(() => sent.bytes)
  t.ok(held < TOTAL / 2, `while the upstream does not read, the client could send ${(held / MiB).toFixed(1)} MiB of ${TOTAL / MiB}`)
  upstreamReq?.resume()
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  await new Promise(resolve => stream.once('end', resolve))
  t.equal(Buffer.concat(chunks).toString(), String(TOTAL), 'the upstream received every byte')
})

t.test('retries over HTTP/2: a 503 from one target is retried on the other, a body with Content-Length too', async t => {
  const failing = await startUpstream((req, res) => { req.resume(); res.writeHead(503).end('busy') })
  const healthy = await startUpstream()
  t.teardown(() => Promise.all([failing.close(), healthy.close()]))
  const { gw, connect } = await startH2Gateway(t, 'true', `upstreams:
  up:
    balance: round-robin
    targets: [ { url: "${failing.url}" }, { url: "${healthy.url}" } ]
    retries: { attempts: 1, on: [503], methods: [GET, POST] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  const session = await connect()
  for (let i = 0; i < 2; i++) {
    const get = await h2Request(session, { ':path': `/get${i}` })
    t.equal(get.status, 200, `GET ${i}`)
    const post = await h2Request(session, { ':path': `/post${i}`, ':method': 'POST', 'content-length': '4' }, 'data')
    t.equal(post.status, 200, `POST ${i}`)
    t.equal(echoed(post).body, 'data')
  }
  t.ok(gw.logs.some(l => l.msg === 'request' && l.tries === 2 && l.protocol === 'HTTP/2'), 'logged with its two tries')
})

/** An HTTP/2 session to a gateway with these `server` settings, in front of an echoing upstream. */
async function sessionWith (t: Test, server: string) {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url), { server })
  return { gw, session: await connect() }
}

t.test('client timeouts are per stream: a stalled upload loses its stream, not the connection', async t => {
  const { gw, session } = await sessionWith(t, '  clientTimeouts: { body: 500ms }\n')
  const stalled = session.request({ ':path': '/stalled', ':method': 'POST' })
  stalled.write('part of a body')
  const reset = new Promise<number>(resolve => stalled.on('close', () => resolve(stalled.rstCode ?? -1)))
  stalled.on('error', () => {})
  // Meanwhile the same connection serves others.
  t.equal((await h2Request(session, { ':path': '/other' })).status, 200)
  t.equal(await reset, constants.NGHTTP2_INTERNAL_ERROR, 'the stalled stream is reset (INTERNAL_ERROR)')
  t.notOk(session.closed || session.destroyed, 'the connection stays')
  t.equal((await h2Request(session, { ':path': '/after' })).status, 200)
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.path === '/stalled')))
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/stalled'), { status: 408, error: 'client_body_timeout', protocol: 'HTTP/2' })
})

t.test('clientTimeouts.minBodyRate is per stream: a slow upload beside a busy one on the same connection is cut off', async t => {
  const { gw, session } = await sessionWith(t, '  clientTimeouts: { body: 1s, minBodyRate: 2000 }\n')
  const slow = session.request({ ':path': '/slow', ':method': 'POST' })
  slow.on('error', () => {})
  // 50 bytes/s, never idle for 1 s: only the rate catches it, at about 1 s.
  const trickle = setInterval(() => { if (!slow.closed) slow.write('x'.repeat(10)) }, 200)
  t.teardown(() => clearInterval(trickle))
  // 4 MB on the same connection: counted as the slow stream's, it would allow that one 2,000 s more.
  t.equal((await h2Request(session, { ':path': '/busy', ':method': 'POST' }, Buffer.alloc(4_000_000, 'y'))).status, 200)
  t.ok(await until(() => slow.closed && gw.logs.some(l => l.msg === 'request' && l.path === '/slow'), 10_000), 'the slow stream was cut off')
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/slow'), { status: 408, error: 'client_body_too_slow', protocol: 'HTTP/2' })
  t.notOk(session.closed || session.destroyed, 'the connection stays')
})
