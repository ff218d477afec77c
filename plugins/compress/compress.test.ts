import t from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import zlib from 'node:zlib'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { until } from '../../test/helpers/wait.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { settled, type WriteProgress } from '../../test/helpers/streams.ts'
import { GatewayError } from '../../src/errors.ts'
import { parseConfig } from '../../src/config/load.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

// Each broken body's warning is looked for (their kind is limited per route and target).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const JSON_BODY = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) })
const GZIPPED = zlib.gzipSync(JSON_BODY)
const GZIPPED_TWICE = zlib.gzipSync(GZIPPED)
const GZIPPED_THEN_BR = zlib.brotliCompressSync(GZIPPED)
const DIGESTS = { 'content-digest': 'sha-256=:AAAA:', 'repr-digest': 'sha-256=:BBBB:', 'content-md5': 'Q2hlY2sgSW50ZWdyaXR5IQ==', digest: 'SHA-256=CCCC' }
/** Lets a streaming test tell its upstream to finish. */
const release = { stream: () => {}, sse: () => {}, sseLate: () => {} }
/** The responses the /stall-early upstream holds open. */
const stalling: ServerResponse[] = []
/** What the backpressure upstream has written so far. */
const progress: WriteProgress = { written: 0, waitingForDrain: false, finished: false }
const TEXT_CHUNK = randomBytes(32 * 1024).toString('hex') // 64 KiB that deflate shrinks by half at best
const BIG = 16 * 1024 * 1024
const MIN_SIZE = JSON.stringify('x'.repeat(1022)) // exactly minSize (1024) bytes
const HAS_ZSTD = typeof (zlib as unknown as Record<string, unknown>).createZstdCompress === 'function'

function send (res: ServerResponse, status: number, headers: Record<string, string | string[]>, body: string | Buffer = JSON_BODY): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers })
  res.end(body)
}

const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
  switch (req.url?.replace(/^\/(plain|defaults|parts|zero)/, '')) {
    case '/json': return send(res, 200, { etag: '"v1"', 'accept-ranges': 'bytes' })
    case '/min-size': return send(res, 200, {}, MIN_SIZE)
    case '/weak': return send(res, 200, { etag: 'W/"v1"' })
    case '/unquoted': return send(res, 200, { etag: 'abc' })
    case '/not-modified-unquoted': res.writeHead(304, { etag: 'abc', 'content-type': 'application/json' }).end(); return
    case '/small': return send(res, 200, {}, '{"ok":true}')
    case '/png': return send(res, 200, { 'content-type': 'image/png' })
    case '/svg': return send(res, 200, { 'content-type': 'image/svg+xml' })
    case '/problem': return send(res, 404, { 'content-type': 'application/problem+json' })
    case '/no-transform': return send(res, 200, { 'cache-control': 'public, no-transform' })
    case '/no-transform-first': return send(res, 200, { 'cache-control': 'no-transform, max-age=60' })
    case '/no-transform-spaced': return send(res, 200, { 'cache-control': 'private ,no-transform ,max-age=60' })
    case '/no-transform-split': return send(res, 200, { 'cache-control': ['public', 'no-transform'] })
    case '/range-200': return send(res, 200, { 'content-range': `bytes 0-${JSON_BODY.length - 1}/${JSON_BODY.length}` })
    case '/byteranges': return send(res, 206, { 'content-type': 'multipart/byteranges; boundary=B' }, `--B\r\ncontent-range: bytes 0-99/5000\r\n\r\n${JSON_BODY.slice(0, 100)}\r\n--B\r\ncontent-range: bytes 200-4999/5000\r\n\r\n${JSON_BODY.slice(200, 5000)}\r\n--B--\r\n`)
    case '/range': return send(res, 206, { 'content-range': `bytes 0-${JSON_BODY.length - 1}/${JSON_BODY.length * 2}` })
    case '/no-content': res.writeHead(204, { 'content-type': 'application/json' }).end(); return
    // Node sends a 205 chunked, with no Content-Length: a body of unknown length to compress.
    case '/reset-content': res.writeHead(205, { 'content-type': 'application/json' }).end(); return
    case '/empty': return send(res, 200, {}, '')
    case '/not-modified': res.writeHead(304, { etag: '"v1"', 'content-type': 'application/json' }).end(); return
    case '/not-modified-untyped': res.writeHead(304, { etag: '"v1"' }).end(); return
    case '/not-modified-png': res.writeHead(304, { etag: '"v1"', 'content-type': 'image/png' }).end(); return
    case '/gzipped': return send(res, 200, { 'content-encoding': 'gzip', etag: '"g1"' }, GZIPPED)
    case '/gzipped-twice': return send(res, 200, { 'content-encoding': ['gzip', 'gzip'] }, GZIPPED_TWICE)
    case '/gzipped-twice-one-line': return send(res, 200, { 'content-encoding': 'gzip, gzip' }, GZIPPED_TWICE)
    case '/gzip-then-br': return send(res, 200, { 'content-encoding': ['gzip', 'br'] }, GZIPPED_THEN_BR)
    case '/digests': return send(res, 200, DIGESTS)
    case '/gzipped-digests': return send(res, 200, { 'content-encoding': 'gzip', ...DIGESTS }, GZIPPED)
    case '/not-modified-small': res.writeHead(304, { etag: '"sm"', 'content-type': 'application/json' }).end(); return
    case '/not-modified-gzipped': res.writeHead(304, { etag: '"g1"', 'content-type': 'application/json' }).end(); return
    case '/not-modified-encoded': res.writeHead(304, { etag: '"g1"', 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(GZIPPED.length) }).end(); return
    case '/gzipped-png': return send(res, 200, { 'content-encoding': 'gzip', 'content-type': 'image/png' }, GZIPPED)
    case '/small-tagged': return send(res, 200, { etag: '"sm"' }, '{}')
    case '/gzipped-empty': return send(res, 200, { 'content-encoding': 'gzip' }, '')
    case '/raw-deflate': return send(res, 200, { 'content-encoding': 'deflate' }, zlib.deflateRawSync(JSON_BODY))
    case '/deflate-crlf': return send(res, 200, { 'content-encoding': 'deflate' }, Buffer.concat([zlib.deflateSync(JSON_BODY), Buffer.from('\r\n')]))
    case '/raw-deflate-crlf': return send(res, 200, { 'content-encoding': 'deflate' }, Buffer.concat([zlib.deflateRawSync(JSON_BODY), Buffer.from('\r\n')]))
    case '/gzip-crlf': return send(res, 200, { 'content-encoding': 'gzip' }, Buffer.concat([GZIPPED, Buffer.from('\r\n')]))
    case '/gzip-members-garbage': return send(res, 200, { 'content-encoding': 'gzip' }, Buffer.concat([zlib.gzipSync(JSON_BODY.slice(0, 1000)), zlib.gzipSync(JSON_BODY.slice(1000)), Buffer.from('<!-- served -->')]))
    case '/range-small': return send(res, 206, { 'content-range': 'bytes 0-10/11' }, '{"ok":true}')
    case '/range-png': return send(res, 206, { 'content-type': 'image/png', 'content-range': `bytes 0-99/${JSON_BODY.length}` }, JSON_BODY.slice(0, 100))
    case '/range-no-transform': return send(res, 206, { 'cache-control': 'no-transform', 'content-range': `bytes 0-99/${JSON_BODY.length}` }, JSON_BODY.slice(0, 100))
    case '/range-unknown-length': return send(res, 206, { 'content-range': 'bytes 0-99/*' }, JSON_BODY.slice(0, 100))
    case '/range-gzipped': return send(res, 206, { 'content-encoding': 'gzip', 'content-range': `bytes 0-99/${GZIPPED.length}` }, GZIPPED.subarray(0, 100))
    case '/gzipped-empty-chunked': res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(); return
    case '/gzipped-truncated': return send(res, 200, { 'content-encoding': 'gzip' }, GZIPPED.subarray(0, GZIPPED.length - 8))
    case '/gzipped-corrupt': return send(res, 200, { 'content-encoding': 'gzip' }, 'not gzip at all')
    case '/constructor': return send(res, 200, { 'content-encoding': 'constructor' })
    case '/identity': return send(res, 200, { 'content-encoding': 'identity' })
    case '/vary': return send(res, 200, { vary: 'Origin' })
    case '/stream': {
      // 256 KiB that deflate cannot shrink much, then nothing until the test has seen bytes.
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write(randomBytes(128 * 1024).toString('hex'))
      release.stream = () => res.end('done')
      return
    }
    case '/broken': {
      // Part of a body, then the connection breaks.
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write(randomBytes(16 * 1024).toString('hex'))
      setTimeout(() => res.socket?.destroy(), 20)
      return
    }
    case '/broken-early':
    case '/stall-early': {
      // A few bytes (brotli puts nothing out for them until the upstream has paused 50 ms), then a
      // break; or a head, then nothing (bytes would be flushed once the upstream has paused).
      res.writeHead(200, { 'content-type': 'text/plain' })
      if (req.url === '/broken-early') {
        res.write('the first few bytes')
        setTimeout(() => res.socket?.destroy(), 20)
      } else {
        res.flushHeaders()
        stalling.push(res)
      }
      return
    }
    case '/big': {
      res.writeHead(200, { 'content-type': 'text/plain' })
      void (async () => {
        while (progress.written < BIG && !res.destroyed) {
          progress.written += TEXT_CHUNK.length
          if (!res.write(TEXT_CHUNK)) { progress.waitingForDrain = true; await once(res, 'drain'); progress.waitingForDrain = false }
        }
        res.end()
        progress.finished = true
      })()
      return
    }
    case '/sse-late': {
      // The head at once, the first event only when the test says so.
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.flushHeaders()
      release.sseLate = () => res.end('data: first\n\n')
      return
    }
    case '/sse':
    case '/sse-utf8':
    case '/sse-upper':
    case '/ndjson': {
      const types: Record<string, string> = { '/sse': 'text/event-stream', '/sse-utf8': 'text/event-stream; charset=utf-8', '/sse-upper': 'Text/Event-Stream', '/ndjson': 'application/x-ndjson' }
      res.writeHead(200, { 'content-type': types[req.url] as string, 'cache-control': 'no-cache' })
      res.write('data: first\n\n')
      release.sse = () => res.end('data: second\n\n')
      return
    }
    case '/echo-fields': {
      const fields = ['content-encoding', 'content-length', ...Object.keys(DIGESTS)].filter(name => req.headers[name] !== undefined)
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      // CGI, WSGI and Rack servers read Content_Digest as Content-Digest.
      const underscored = Object.keys(req.headers).filter(name => name.includes('_'))
      req.on('end', () => send(res, 200, {}, JSON.stringify({ body: Buffer.concat(chunks).toString(), fields, length: req.headers['content-length'] ?? null, underscored })))
      return
    }
    default: {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => send(res, 200, {}, JSON.stringify({ body: Buffer.concat(chunks).toString(), encoding: req.headers['content-encoding'] ?? null })))
    }
  }
})
t.teardown(() => up.close())

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: echo, match: { path: /echo }, upstream: up, plugins: { compress: { requests: true } } }
  - { name: bounded, match: { path: /bounded }, upstream: up, plugins: { compress: { requests: true }, request-size: { maxBody: 65536 } } }
  - { name: plain, match: { path: /plain/* }, upstream: up, plugins: { compress: { decompressForClients: false } } }
  - { name: defaults, match: { path: /defaults/* }, upstream: up, plugins: { compress: {} } }
  - { name: parts, match: { path: /parts/* }, upstream: up, plugins: { compress: { types: [multipart/byteranges] } } }
  - { name: zero, match: { path: /zero/* }, upstream: up, plugins: { compress: { minSize: 0 } } }
  - { name: fields, match: { path: /echo-fields }, upstream: up, plugins: { compress: { requests: true } } }
  - { name: stall, match: { path: /stall-early }, upstream: up, timeouts: { request: 300ms }, plugins: { compress: {} } }
  - name: all
    match: { path: /* }
    upstream: up
    plugins:
      compress: { encodings: [br, gzip, deflate] }
`, { admin: true })
t.teardown(() => gw.close())

async function get (path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(`${gw.url}${path}`, { method, headers })
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body }
}

function decode (encoding: unknown, body: Buffer): string {
  if (encoding === 'br') return zlib.brotliDecompressSync(body).toString()
  if (encoding === 'gzip') return zlib.gunzipSync(body).toString()
  if (encoding === 'deflate') return zlib.inflateSync(body).toString()
  return body.toString()
}

t.test('each coding the client prefers, streamed: no Content-Length, Vary, weakened ETag', async t => {
  for (const [accept, expected] of [['gzip, deflate, br', 'br'], ['gzip', 'gzip'], ['deflate', 'deflate'], ['br;q=0.5, gzip', 'gzip']]) {
    const res = await get('/json', { 'accept-encoding': accept as string })
    t.equal(res.headers['content-encoding'], expected, String(accept))
    t.equal(res.headers['content-length'], undefined)
    t.equal(res.headers.vary, 'accept-encoding')
    t.equal(res.headers.etag, 'W/"v1"')
    t.equal(res.headers['accept-ranges'], undefined, 'ranges of the upstream\'s body do not apply to the encoded one')
    t.ok(res.body.length < JSON_BODY.length / 3, `${expected}: ${res.body.length} bytes on the wire for ${JSON_BODY.length}`)
    t.equal(decode(expected, res.body), JSON_BODY)
    const logged = await waitForLog(gw.logs, { msg: 'request', requestId: res.headers['x-request-id'] })
    t.equal(logged?.bytes, res.body.length, 'the access log counts the bytes sent, not the upstream\'s')
    // Only event streams are flushed as they come: anything else is deflated as one stream, whatever its chunks.
    if (expected === 'gzip') t.same(res.body, zlib.gzipSync(JSON_BODY, { level: 6 }), 'gzip level 6 of the whole body, not flushed along the way')
  }
})

t.test('negotiation edge cases end to end', async t => {
  const cases: Array<[string | undefined, string | undefined]> = [
    [undefined, undefined], ['identity', undefined], ['identity;q=0', undefined], ['*', 'br'],
    ['br;q=0, *', 'gzip'], ['compress, foo', undefined], ['GZIP;Q=0.5', 'gzip'], ['*;q=0', undefined],
    ['gzip, *;q=1, br;q=0.4', 'gzip'], ['*;q=0.5, br;q=0.1', 'gzip']
  ]
  for (const [accept, expected] of cases) {
    const res = await get('/json', accept === undefined ? {} : { 'accept-encoding': accept })
    t.equal(res.headers['content-encoding'], expected, `${String(accept)} → ${String(expected)}`)
    t.equal(res.headers.vary, 'accept-encoding', 'Vary either way: the answer depends on the header')
    t.equal(decode(expected, res.body), JSON_BODY)
    if (expected === undefined) {
      t.equal(res.headers.etag, '"v1"', 'an unchanged body keeps its strong ETag')
      t.equal(res.headers['accept-ranges'], 'bytes', 'and its Accept-Ranges')
    }
  }
})

t.test('default codings: zstd first where the Node running has it, else never offered', async t => {
  const res = await get('/defaults/json', { 'accept-encoding': 'zstd, gzip;q=0.5' })
  t.equal(res.status, 200)
  t.equal(res.headers['content-encoding'], HAS_ZSTD ? 'zstd' : 'gzip')
  if (!HAS_ZSTD) t.equal(decode('gzip', res.body), JSON_BODY)
  // The docs' examples of `*` (docs/plugins/compress.md, Negotiation), with the default codings.
  for (const [accept, expected] of [['br;q=0, *', HAS_ZSTD ? 'zstd' : 'gzip'], ['br;q=0, zstd;q=0, *', 'gzip']] as const) {
    const star = await get('/defaults/json', { 'accept-encoding': accept })
    t.equal(star.headers['content-encoding'], expected, accept)
  }
})

t.test('never compressed', async t => {
  const cases: Array<[string, string, 'GET' | 'HEAD']> = [
    ['small body (below minSize)', '/small', 'GET'], ['type not in the list', '/png', 'GET'],
    ['Cache-Control: no-transform', '/no-transform', 'GET'], ['no-transform first', '/no-transform-first', 'GET'],
    ['no-transform between spaces and commas', '/no-transform-spaced', 'GET'], ['no-transform on a second Cache-Control line', '/no-transform-split', 'GET'],
    ['range response', '/range', 'GET'], ['a 200 with Content-Range', '/range-200', 'GET'], ['a 206 of several parts', '/parts/byteranges', 'GET'],
    ['204', '/no-content', 'GET'], ['205', '/reset-content', 'GET'], ['304', '/not-modified', 'GET'],
    ['an empty body, whatever minSize', '/zero/empty', 'GET'], ['HEAD of an empty body, whatever minSize', '/zero/empty', 'HEAD']
  ]
  // A 206 is never encoded, but varies as its 200 does (see the test of 206s).
  const described = new Set(['304', 'range response', 'a 206 of several parts'])
  for (const [name, path, method] of cases) {
    const res = await get(path, { 'accept-encoding': 'gzip, br' }, method)
    t.equal(res.headers['content-encoding'], undefined, name)
    if (!described.has(name)) t.equal(res.headers.vary, undefined, `${name}: no Vary`)
    if (res.status === 205) t.equal(res.body.length, 0, '205: no content (RFC 9110 15.3.6)')
  }
  const empty = await get('/zero/empty', { 'accept-encoding': 'gzip' })
  t.same([empty.headers['content-length'], empty.body.length], ['0', 0], 'an empty body stays empty')
  t.equal((await get('/zero/small', { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip', 'minSize 0: any other body is compressed')
  const small = await get('/small', { 'accept-encoding': 'gzip' })
  t.equal(small.headers['content-length'], '11', 'the length stays')
  t.equal(small.body.toString(), '{"ok":true}')
  t.equal((await get('/min-size', { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip', 'a body of exactly minSize is compressed')
})

t.test('HEAD and 304: the Vary and ETag the 200 would have, no body; HEAD the Content-Encoding too (RFC 9110 9.3.2, 15.4.5)', async t => {
  const cases: Array<[string, string, 'GET' | 'HEAD', Record<string, string>, string | undefined, string | undefined]> = [
    // name, path, method, request headers, Vary, ETag
    ['HEAD, a client that takes gzip', '/json', 'HEAD', { 'accept-encoding': 'gzip' }, 'accept-encoding', 'W/"v1"'],
    ['HEAD, a client that takes no coding', '/json', 'HEAD', {}, 'accept-encoding', '"v1"'],
    ['HEAD, a body below minSize', '/small', 'HEAD', { 'accept-encoding': 'gzip' }, undefined, undefined],
    ['HEAD, a type not in the list', '/png', 'HEAD', { 'accept-encoding': 'gzip' }, undefined, undefined],
    ['HEAD, no-transform', '/no-transform', 'HEAD', { 'accept-encoding': 'gzip' }, undefined, undefined],
    ['HEAD, stored gzip, a client that takes it', '/gzipped', 'HEAD', { 'accept-encoding': 'gzip' }, 'accept-encoding', '"g1"'],
    ['304, a client that takes br', '/not-modified', 'GET', { 'accept-encoding': 'br', 'if-none-match': 'W/"v1"' }, 'accept-encoding', 'W/"v1"'],
    ['304, a client that takes no coding', '/not-modified', 'GET', { 'if-none-match': '"v1"' }, 'accept-encoding', '"v1"'],
    ['304, a type not in the list', '/not-modified-png', 'GET', { 'accept-encoding': 'gzip' }, undefined, '"v1"'],
    ['304 without a type, the client holding the compressed copy', '/not-modified-untyped', 'GET', { 'accept-encoding': 'gzip', 'if-none-match': 'W/"v1"' }, 'accept-encoding', 'W/"v1"'],
    ['304 without a type, the client holding the plain copy', '/not-modified-untyped', 'GET', { 'accept-encoding': 'gzip', 'if-none-match': '"v1"' }, 'accept-encoding', '"v1"'],
    // A typed 304 tells no more than an untyped one: not the size (a 200 below minSize kept its strong
    // ETag), not whether the upstream had encoded the body. These once got the ETag weakened (or not) by the type alone.
    ['304 of a body below minSize, typed', '/not-modified-small', 'GET', { 'accept-encoding': 'gzip', 'if-none-match': '"sm"' }, 'accept-encoding', '"sm"'],
    ['304 of a body the upstream gzipped, typed, a client that takes gzip', '/not-modified-gzipped', 'GET', { 'accept-encoding': 'gzip', 'if-none-match': '"g1"' }, 'accept-encoding', '"g1"'],
    ['304 of a body the upstream gzipped, typed, a client that took it decoded', '/not-modified-gzipped', 'GET', { 'if-none-match': 'W/"g1"' }, 'accept-encoding', 'W/"g1"']
  ]
  for (const [name, path, method, headers, vary, etag] of cases) {
    const res = await get(path, headers, method)
    t.equal(res.headers['content-encoding'], path === '/gzipped' || name === 'HEAD, a client that takes gzip' ? 'gzip' : undefined, `${name}: the coding the GET would have`)
    t.equal(res.body.length, 0, `${name}: no body`)
    t.equal(res.headers.vary, vary, `${name}: Vary`)
    t.equal(res.headers.etag, etag, `${name}: ETag`)
  }
  const head = await get('/json', { 'accept-encoding': 'gzip' }, 'HEAD')
  t.equal(head.headers['content-length'], undefined, 'HEAD of a body the GET would encode: no length, as the GET')
  const plain = await get('/json', {}, 'HEAD')
  t.same([plain.headers['content-length'], plain.headers['content-encoding']], [String(JSON_BODY.length), undefined], 'HEAD for a client that takes no coding: the upstream\'s length, no coding')
})

t.test('a 304 answers for its 200: the same ETag, for a body below minSize and one the upstream encoded', async t => {
  const small = await get('/small-tagged', { 'accept-encoding': 'gzip' })
  t.same([small.headers['content-encoding'], small.headers.etag], [undefined, '"sm"'], 'the 200: plain, its ETag strong')
  t.equal((await get('/not-modified-small', { 'accept-encoding': 'gzip', 'if-none-match': '"sm"' })).headers.etag, '"sm"', 'the 304: the same')
  for (const [accept, etag] of [['gzip', '"g1"'], ['', 'W/"g1"']]) {
    const full = await get('/gzipped', accept === '' ? {} : { 'accept-encoding': accept as string })
    t.equal(full.headers.etag, etag, `Accept-Encoding "${accept}": the 200's ETag`)
    const revalidated = await get('/not-modified-gzipped', { ...(accept === '' ? {} : { 'accept-encoding': accept as string }), 'if-none-match': etag as string })
    t.equal(revalidated.headers.etag, etag, `Accept-Encoding "${accept}": the 304's`)
  }
})

t.test('HEAD of a body the upstream encoded says what the GET would: the coding sent, no length (RFC 9110 9.3.2)', async t => {
  for (const accept of ['br', '', 'gzip']) {
    const headers: Record<string, string> = accept === '' ? {} : { 'accept-encoding': accept }
    const got = await get('/gzipped', headers)
    const head = await get('/gzipped', headers, 'HEAD')
    t.equal(head.headers['content-encoding'], got.headers['content-encoding'], `Accept-Encoding "${accept}": the GET's Content-Encoding`)
    t.equal(head.headers['content-length'], got.headers['content-length'], 'the GET\'s Content-Length (none when the body is decoded)')
    t.equal(head.headers.etag, got.headers.etag, 'the GET\'s ETag')
    t.equal(head.headers.vary, got.headers.vary, 'the GET\'s Vary')
  }
  const sent = await get('/gzipped', { 'accept-encoding': 'gzip' }, 'HEAD')
  t.equal(sent.headers['content-length'], String(GZIPPED.length), 'sent as is: the upstream\'s length')
  // A 304 with the upstream's Content-Encoding describes the body the same way.
  const notModified = await get('/not-modified-encoded', { 'if-none-match': 'W/"g1"' })
  t.same([notModified.status, notModified.headers['content-encoding'], notModified.headers['content-length'], notModified.headers.etag],
    [304, undefined, undefined, 'W/"g1"'], 'a 304 for a client that got it decoded: no coding, no length')
})

t.test('codings on two Content-Encoding lines are a list, passed as is like one on a single line', async t => {
  const coding = (v: string | string[] | undefined) => [v ?? []].flat().join(', ')
  for (const accept of ['br', '', 'gzip']) {
    const headers: Record<string, string> = accept === '' ? {} : { 'accept-encoding': accept }
    for (const path of ['/gzipped-twice', '/gzipped-twice-one-line']) {
      const res = await get(path, headers)
      t.equal(coding(res.headers['content-encoding']), 'gzip, gzip', `${path}, Accept-Encoding "${accept}": both codings named`)
      t.same(res.body, GZIPPED_TWICE, 'the bytes the upstream sent')
      t.equal(res.headers.vary, undefined, 'no Vary: the same for every client')
      const head = await get(path, headers, 'HEAD')
      t.equal(coding(head.headers['content-encoding']), 'gzip, gzip', 'HEAD: the same')
    }
  }
  // Decoding the first line's coding from the body once answered this with a 502.
  const res = await get('/gzip-then-br')
  t.equal(res.status, 200)
  t.equal(coding(res.headers['content-encoding']), 'gzip, br')
  t.same(res.body, GZIPPED_THEN_BR)
})

t.test('integrity fields go with a changed body: Content-Digest, Repr-Digest, Content-MD5, Digest', async t => {
  const names = Object.keys(DIGESTS)
  const present = (h: Record<string, unknown>) => names.filter(n => h[n] !== undefined)
  t.same(present((await get('/digests', { 'accept-encoding': 'gzip' })).headers), [], 'encoded: removed')
  t.same(present((await get('/gzipped-digests')).headers), [], 'decoded: removed')
  t.same(present((await get('/gzipped-digests', { 'accept-encoding': 'br' }, 'HEAD')).headers), [], 'HEAD of a body re-encoded: removed')
  t.same(present((await get('/digests')).headers), names, 'sent plain: kept')
  t.same(present((await get('/gzipped-digests', { 'accept-encoding': 'gzip' })).headers), names, 'sent as the upstream encoded it: kept')
})

t.test('type patterns: image/svg+xml and application/*+json are compressed, error statuses too', async t => {
  t.equal((await get('/svg', { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip')
  const problem = await get('/problem', { 'accept-encoding': 'gzip' })
  t.equal(problem.status, 404)
  t.equal(problem.headers['content-encoding'], 'gzip')
})

t.test('Vary is appended to, not replaced', async t => {
  t.equal((await get('/vary', { 'accept-encoding': 'gzip' })).headers.vary, 'Origin, accept-encoding')
})

t.test('a weak ETag stays as it is', async t => {
  t.equal((await get('/weak', { 'accept-encoding': 'gzip' })).headers.etag, 'W/"v1"')
})

t.test('an ETag without quotes (invalid) is weakened like a strong one, on a 304 too', async t => {
  t.equal((await get('/unquoted', { 'accept-encoding': 'gzip' })).headers.etag, 'W/abc')
  t.equal((await get('/unquoted')).headers.etag, 'abc', 'sent plain: as it is')
  t.equal((await get('/not-modified-unquoted', { 'accept-encoding': 'gzip', 'if-none-match': 'W/abc' })).headers.etag, 'W/abc')
})

t.test('an already encoded response: passed as is to a client that accepts it, decoded for one that does not', async t => {
  const same = await get('/gzipped', { 'accept-encoding': 'gzip' })
  t.equal(same.headers['content-encoding'], 'gzip')
  t.same(same.body, GZIPPED, 'the bytes the upstream sent')
  t.equal(same.headers.etag, '"g1"')
  const none = await get('/gzipped')
  t.equal(none.headers['content-encoding'], undefined)
  t.equal(none.body.toString(), JSON_BODY, 'decoded for a client that accepts no coding')
  t.equal(none.headers.etag, 'W/"g1"')
  t.equal(none.headers.vary, 'accept-encoding')
  const br = await get('/gzipped', { 'accept-encoding': 'br' })
  t.equal(br.headers['content-encoding'], 'br', 're-encoded as the client accepts')
  t.equal(decode('br', br.body), JSON_BODY)
  // `*` does not override an explicit q=0; x-gzip is gzip (RFC 9110 8.4.1.3).
  // q=0 among other parameters, or a q-value outside RFC 9110 12.4.2: a refusal all the same.
  for (const accept of ['*, gzip;q=0', 'gzip;q=0;x=1, *', 'gzip;x=1;q=0, *', 'gzip;q=0.0001, *', 'gzip;q=0.1e1, *']) {
    const refused = await get('/gzipped', { 'accept-encoding': accept })
    t.equal(refused.headers['content-encoding'], 'br', `${accept}: a client that refuses gzip does not get it`)
    t.equal(decode('br', refused.body), JSON_BODY)
  }
  // Raw deflate without the zlib header, read as browsers read it: decoded, not a 502.
  for (const [accept, expected] of [[undefined, undefined], ['br', 'br']] as const) {
    const raw = await get('/raw-deflate', accept === undefined ? {} : { 'accept-encoding': accept })
    t.same([raw.status, raw.headers['content-encoding'], decode(expected, raw.body)], [200, expected, JSON_BODY], `raw deflate for a client taking ${accept ?? 'none'}`)
  }
  t.same((await get('/raw-deflate', { 'accept-encoding': 'deflate' })).body, zlib.deflateRawSync(JSON_BODY), 'passed as is to one that takes deflate')
  const xgzip = await get('/gzipped', { 'accept-encoding': 'x-gzip' })
  t.equal(xgzip.headers['content-encoding'], 'gzip', 'x-gzip accepts gzip')
  t.same(xgzip.body, GZIPPED)
  const identity = await get('/identity', { 'accept-encoding': 'gzip' })
  t.equal(identity.headers['content-encoding'], 'gzip', 'Content-Encoding: identity is no encoding: compressed')
  t.equal(decode('gzip', identity.body), JSON_BODY)
  const png = await get('/gzipped-png')
  t.same([png.headers['content-encoding'], png.headers.vary, png.body], ['gzip', undefined, GZIPPED], 'a type not in `types`: sent as is, even to a client that takes no coding')
  const off = await get('/plain/gzipped')
  t.equal(off.headers['content-encoding'], 'gzip', 'decompressForClients: false sends it as it is')
  // The name of an Object.prototype property once passed for a coding: the response was cut off.
  const odd = await get('/constructor', { 'accept-encoding': 'gzip' })
  t.equal(odd.headers['content-encoding'], 'constructor', 'a coding the gateway cannot decode is sent as it is')
  t.equal(odd.body.toString(), JSON_BODY)
  // zlib calls an empty input a truncated stream: the connection was closed with no response.
  for (const path of ['/gzipped-empty', '/gzipped-empty-chunked']) {
    const empty = await get(path)
    t.equal(empty.status, 200, `${path}: answered`)
    t.equal(empty.body.length, 0, `${path}: an empty body is empty in any coding`)
    t.equal(empty.headers['content-encoding'], undefined)
  }
})

t.test('streaming: compressed bytes reach the client before the upstream has finished', async t => {
  const res = await request(`${gw.url}/stream`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.headers['content-encoding'], 'gzip')
  const gunzip = zlib.createGunzip()
  res.body.pipe(gunzip)
  let text = ''
  gunzip.on('data', (c: Buffer) => { text += c.toString() })
  t.ok(await until(() => text.length >= 64 * 1024), `${text.length} decoded characters before the upstream ended`)
  release.stream()
  await once(gunzip, 'end')
  t.equal(text.length, 256 * 1024 + 4)
  t.ok(text.endsWith('done'))
})

t.test('a client that leaves mid-body: logged as gone (499), no plugin failure', async t => {
  const res = await request(`${gw.url}/stream`, { headers: { 'accept-encoding': 'gzip' } })
  const id = res.headers['x-request-id']
  let received = 0
  res.body.on('data', (c: Buffer) => { received += c.length })
  t.ok(await until(() => received > 0), 'part of the body arrived')
  res.body.destroy()
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: id }), { status: 499, error: undefined })
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'the streams pipeline ended for it are no plugin failure')
})

t.test('an upstream that breaks mid-body: logged as upstream_broken, no plugin failure', async t => {
  // gzip may not have sent a byte (the head included) by the break: the client sees a cut either way.
  await t.rejects(request(`${gw.url}/broken`, { headers: { 'accept-encoding': 'gzip' } }).then(res => res.body.arrayBuffer()), 'the response is cut short')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/broken' }), { status: 200, error: 'upstream_broken' })
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'the streams pipeline ended for it are no plugin failure')
})

t.test('an upstream that breaks or stalls before the encoder put out a byte: answered 502 or 504, the head held back', async t => {
  const broken = await request(`${gw.url}/broken-early`, { headers: { 'accept-encoding': 'br', 'x-request-id': 'broken-early' } })
  t.equal(broken.statusCode, 502)
  t.match(await broken.body.json(), { error: 'bad_gateway', requestId: 'broken-early' })
  t.equal(broken.headers['content-encoding'], undefined, 'none of the held head is sent')
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'broken-early' }), { status: 502, error: undefined })
  const stalled = await request(`${gw.url}/stall-early`, { headers: { 'accept-encoding': 'br', 'x-request-id': 'stall-early' } })
  t.equal(stalled.statusCode, 504, "the route's request timeout")
  t.match(await stalled.body.json(), { error: 'gateway_timeout', requestId: 'stall-early' })
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'stall-early' }), { status: 504, error: undefined }, 'answered, not cut')
  // A client that leaves while the head is held: its streams and the upstream request end with it.
  const leaving = new AbortController()
  const left = request(`${gw.url}/stall-early`, { headers: { 'accept-encoding': 'br', 'x-request-id': 'left-early' }, signal: leaving.signal })
  await until(() => stalling.length === 2)
  leaving.abort()
  await t.rejects(left)
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'left-early' }), { status: 499, error: undefined })
  t.ok(await until(() => stalling.every(r => r.destroyed)), 'the upstream requests were closed')
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'no plugin failure')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_in_flight'), 0, 'nothing left in flight')
})

t.test('backpressure: a client that does not read holds the upstream back, nothing piles up in the gateway', async t => {
  const res = await request(`${gw.url}/big`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.headers['content-encoding'], 'gzip')
  res.body.pause()
  const stalled = await settled(() => progress.written)
  t.ok(progress.waitingForDrain, 'the upstream waits for the gateway to drain')
  // How much fits in socket and stream buffers depends on the machine: the point is that the upstream is held back before the end.
  t.ok(stalled < BIG, `${(stalled / 1024 / 1024).toFixed(1)} MiB written of ${BIG / 1024 / 1024} while the client reads nothing`)
  const gunzip = zlib.createGunzip()
  let length = 0
  gunzip.on('data', (c: Buffer) => { length += c.length })
  res.body.pipe(gunzip)
  await once(gunzip, 'end')
  t.equal(length, BIG, 'all of it arrives once the client reads')
  t.ok(progress.finished)
})

t.test('server-sent events and ndjson are flushed event by event, whatever the case of the type', async t => {
  for (const path of ['/sse', '/sse-utf8', '/sse-upper', '/ndjson']) {
    const res = await request(`${gw.url}${path}`, { headers: { 'accept-encoding': 'br' } })
    t.equal(res.headers['content-encoding'], 'br')
    const decoder = zlib.createBrotliDecompress()
    res.body.pipe(decoder)
    let text = ''
    decoder.on('data', (c: Buffer) => { text += c.toString() })
    t.ok(await until(() => text === 'data: first\n\n'), `${path}: the first event arrived whole while the stream is open`)
    release.sse()
    await once(decoder, 'end')
    t.equal(text, 'data: first\n\ndata: second\n\n')
  }
})

t.test('an event stream\'s head reaches the client before its first event, as it does uncompressed', async t => {
  for (const coding of ['br', 'gzip', 'deflate']) {
    const pending = request(`${gw.url}/sse-late`, { headers: { 'accept-encoding': coding } })
    // Bounded only so that a head held until the first event fails the test rather than hang it.
    const early = await Promise.race([pending, delay(10_000, undefined, { ref: false })])
    t.ok(early !== undefined, `${coding}: the head arrived while the upstream had sent no event`)
    release.sseLate()
    const res = await pending
    t.equal(res.headers['content-encoding'], coding)
    t.equal(decode(coding, Buffer.from(await res.body.arrayBuffer())), 'data: first\n\n', 'then the event')
  }
})

t.test('request bodies: decoded for the upstream when requests: true', async t => {
  const empty = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'gzip', 'content-length': '0' } })
  t.same(await empty.body.json(), { body: '', encoding: null }, 'an empty body is empty in any coding')
  for (const [encoding, body] of [['gzip', zlib.gzipSync('hello')], ['br', zlib.brotliCompressSync('hello')], ['deflate', zlib.deflateSync('hello')]] as const) {
    const res = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': encoding }, body })
    t.same(await res.body.json(), { body: 'hello', encoding: null }, encoding)
  }
  const unknown = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'compress' }, body: 'xyz' })
  t.same(await unknown.body.json(), { body: 'xyz', encoding: 'compress' }, 'an unknown coding passes through')
  // Names of Object.prototype properties were taken for codings: a 500, or a request left hanging.
  for (const encoding of ['constructor', '__proto__']) {
    const odd = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': encoding }, body: 'xyz' })
    t.same(await odd.body.json(), { body: 'xyz', encoding }, `${encoding} is no coding either`)
  }
  const broken = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: 'not gzip at all' })
  t.equal(broken.statusCode, 400)
  t.match(await broken.body.json(), { error: 'bad_body' })
})

t.test('request bodies: decoded, they lose the encoded bytes\' digests and length; raw deflate is deflate', async t => {
  const fields = Object.keys(DIGESTS)
  const body = zlib.gzipSync('hello')
  const res = await request(`${gw.url}/echo-fields`, { method: 'POST', headers: { 'content-encoding': 'gzip', 'content-length': String(body.length), ...DIGESTS }, body })
  const decoded = await res.body.json() as { body: string, fields: string[], length: string | null, underscored: string[] }
  t.same([decoded.body, decoded.fields.filter(name => name !== 'content-length'), decoded.underscored], ['hello', [], []], 'Content-Digest, Repr-Digest, Content-MD5, Digest describe the encoded body: removed')
  // undici gives a body that ended before it was sent its length.
  t.ok(decoded.length === null || decoded.length === '5', `no Content-Length of the encoded bytes (${body.length}): ${decoded.length}`)
  const plain = await request(`${gw.url}/echo-fields`, { method: 'POST', headers: DIGESTS, body: 'hello' })
  t.same(await plain.body.json(), { body: 'hello', fields: ['content-length', ...fields], length: '5', underscored: [] }, 'a body not decoded keeps them')
  // A CGI server reads each as the field it spells (HTTP_CONTENT_DIGEST): they went through once.
  const spelt = { content_digest: 'sha-256=:AAAA:', Repr_Digest: 'sha-256=:BBBB:', CONTENT_MD5: 'Q2hlY2sgSW50ZWdyaXR5IQ==', content_encoding: 'gzip', content_length: '5', x_trace_id: 'kept' }
  const underscored = await request(`${gw.url}/echo-fields`, { method: 'POST', headers: { 'content-encoding': 'gzip', ...spelt }, body })
  t.same((await underscored.body.json() as { underscored: string[] }).underscored, ['x_trace_id'], 'their `_` spellings too')
  const kept = await request(`${gw.url}/echo-fields`, { method: 'POST', headers: spelt, body: 'hello' })
  // Content_Length aside: the gateway drops the `_` spellings of framing fields from every request.
  t.same((await kept.body.json() as { underscored: string[] }).underscored.sort(), Object.keys(spelt).map(n => n.toLowerCase()).filter(n => n !== 'content_length').sort(), 'a body not decoded keeps them')
  // Servers long sent raw deflate for `deflate`; browsers take it.
  const raw = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'deflate' }, body: zlib.deflateRawSync('hello') })
  t.same([raw.statusCode, await raw.body.json()], [200, { body: 'hello', encoding: null }], 'raw deflate')
})

// These hung: the decoder never ended once its deflate stream had ended with bytes left.
const SHORT = { headersTimeout: 5_000, bodyTimeout: 5_000 }
t.test('request bodies: bytes after a deflate stream are ignored, as zlib\'s inflate ignores them; answered, not left hanging', { timeout: 20_000 }, async t => {
  const hello = zlib.deflateSync('hello')
  for (const [what, body] of [['a CRLF', Buffer.concat([hello, Buffer.from('\r\n')])], ['a second zlib stream', Buffer.concat([hello, zlib.deflateSync('world')])], ['raw deflate and a CRLF', Buffer.concat([zlib.deflateRawSync('hello'), Buffer.from('\r\n')])]] as const) {
    const res = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'deflate' }, body, ...SHORT })
    t.same([res.statusCode, await res.body.json()], [200, { body: 'hello', encoding: null }], `deflate and ${what}`)
  }
})

t.test('responses: bytes after a deflate stream are ignored for a client it is decoded for; answered, not left hanging', { timeout: 20_000 }, async t => {
  for (const path of ['/deflate-crlf', '/raw-deflate-crlf']) {
    for (const accept of ['identity', 'gzip']) {
      const res = await request(`${gw.url}${path}`, { headers: { 'accept-encoding': accept }, ...SHORT })
      const body = Buffer.from(await res.body.arrayBuffer())
      t.same([res.statusCode, res.headers['content-encoding'], decode(res.headers['content-encoding'], body)], [200, accept === 'gzip' ? 'gzip' : undefined, JSON_BODY], `${path} for a client taking ${accept}`)
    }
  }
})

// These were answered 502 (incorrect header check): createGunzip reads on past the last member.
t.test('responses: bytes after the last gzip member are ignored for a client it is decoded for, as browsers ignore them', async t => {
  for (const path of ['/gzip-crlf', '/gzip-members-garbage']) {
    for (const accept of ['identity', 'br']) {
      const res = await request(`${gw.url}${path}`, { headers: { 'accept-encoding': accept } })
      const body = Buffer.from(await res.body.arrayBuffer())
      t.same([res.statusCode, res.headers['content-encoding'], decode(res.headers['content-encoding'], body)], [200, accept === 'br' ? 'br' : undefined, JSON_BODY], `${path} for a client taking ${accept}`)
    }
  }
})

t.test('request bodies: bytes after the last gzip member are ignored, as after a deflate stream', async t => {
  const hello = zlib.gzipSync('hello')
  const bodies = [
    ['a CRLF', Buffer.concat([hello, Buffer.from('\r\n')])],
    ['a second member and a CRLF', Buffer.concat([hello, zlib.gzipSync(' world'), Buffer.from('\r\n')])],
    ['text', Buffer.concat([hello, Buffer.from('trailing text')])],
    ['zero bytes', Buffer.concat([hello, Buffer.alloc(4)])]
  ] as const
  for (const [what, body] of bodies) {
    const res = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body })
    t.same([res.statusCode, await res.body.json()], [200, { body: what.startsWith('a second') ? 'hello world' : 'hello', encoding: null }], `gzip and ${what}`)
  }
  const cut = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: Buffer.concat([hello, zlib.gzipSync(' world').subarray(0, 12)]) })
  t.same([cut.statusCode, (await cut.body.json() as { error: string }).error], [400, 'bad_body'], 'a second member cut short is a broken body')
})

t.test('a 206 gets the Vary its 200 would have (RFC 9110 15.3.7), its part sent as it is', async t => {
  const cases: Array<[string, string, string | undefined]> = [
    ['a part of a body compress would encode', '/range', 'accept-encoding'],
    ['of a body of unknown length', '/range-unknown-length', 'accept-encoding'],
    ['parts apart, their type unknown', '/byteranges', 'accept-encoding'],
    ['a part of a body below minSize', '/range-small', undefined],
    ['a part of a type not in the list', '/range-png', undefined],
    ['no-transform', '/range-no-transform', undefined],
    ['a part of a gzip body, decoded for a client that takes no gzip', '/range-gzipped', 'accept-encoding'],
    ['a part of a gzip body, passed as it is to every client', '/plain/range-gzipped', undefined]
  ]
  for (const [name, path, vary] of cases) {
    for (const accept of ['gzip', undefined]) {
      const res = await get(path, accept === undefined ? {} : { 'accept-encoding': accept })
      t.equal(res.status, 206, name)
      t.equal(res.headers.vary, vary, `${name}, Accept-Encoding ${String(accept)}: Vary`)
      t.equal(res.headers['content-encoding'], path.endsWith('gzipped') ? 'gzip' : undefined, `${name}: the part as the upstream sent it`)
      t.ok(res.headers['content-length'] !== undefined, `${name}: with its length`)
    }
  }
})

t.test('a zip bomb cannot expand past request-size\'s maxBody', async t => {
  const bomb = zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024))
  t.ok(bomb.length < 100 * 1024, `${bomb.length} bytes on the wire`)
  const res = await request(`${gw.url}/bounded`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: bomb })
  t.equal(res.statusCode, 413)
  t.match(await res.body.json(), { error: 'body_too_large' })
  const fine = await request(`${gw.url}/bounded`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: zlib.gzipSync('small') })
  t.same(await fine.body.json(), { body: 'small', encoding: null })
})

t.test('request bodies: a list of codings is decoded layer by layer, on one line or several', async t => {
  const gzip = (b: Buffer | string) => zlib.gzipSync(b)
  const forms: Array<[string | string[], Buffer]> = [
    ['gzip, gzip', gzip(gzip('hello'))],
    [['gzip', 'gzip'], gzip(gzip('hello'))],
    ['gzip, br', zlib.brotliCompressSync(gzip('hello'))],
    ['deflate,X-GZIP', gzip(zlib.deflateSync('hello'))],
    ['identity, gzip', gzip('hello')],
    ['gzip, identity', gzip('hello')],
    [['identity', 'gzip'], gzip('hello')],
    ['gzip,', gzip('hello')]
  ]
  for (const [encoding, body] of forms) {
    const res = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': encoding }, body })
    t.same([res.statusCode, await res.body.json()], [200, { body: 'hello', encoding: null }], JSON.stringify(encoding))
  }
  for (const encoding of ['compress, x-compress', 'identity, compress']) {
    const res = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': encoding }, body: 'xyz' })
    t.same(await res.body.json(), { body: 'xyz', encoding }, `${encoding}: only codings it does not know, passed through as one is`)
  }
})

t.test('request bodies: a list it cannot decode whole is refused 415, not passed on', async t => {
  const body = zlib.gzipSync(zlib.gzipSync(zlib.gzipSync('hello')))
  for (const encoding of ['gzip, gzip, gzip', 'compress, gzip', 'gzip, compress', ['gzip', 'compress']]) {
    const res = await request(`${gw.url}/echo`, { method: 'POST', headers: { 'content-encoding': encoding, 'x-request-id': 'list-refused' }, body })
    t.equal(res.statusCode, 415, JSON.stringify(encoding))
    t.same(String(res.headers['accept-encoding']).split(', ').sort(), ['br', 'deflate', 'gzip', ...HAS_ZSTD ? ['zstd'] : []], 'Accept-Encoding names the codings it takes (RFC 9110 15.5.16)')
    t.match(await res.body.json(), { error: 'unsupported_content_coding', message: String, requestId: 'list-refused' })
  }
})

t.test('a zip bomb in two layers cannot expand past request-size\'s maxBody', async t => {
  const bomb = zlib.gzipSync(zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024)))
  t.ok(bomb.length < 1024, `${bomb.length} bytes on the wire`)
  for (const encoding of ['gzip, gzip', ['gzip', 'gzip'], 'identity, gzip, gzip']) {
    const res = await request(`${gw.url}/bounded`, { method: 'POST', headers: { 'content-encoding': encoding }, body: bomb })
    t.equal(res.statusCode, 413, JSON.stringify(encoding))
    t.match(await res.body.json(), { error: 'body_too_large' })
  }
})

t.test('portcullis_compress_responses_total counts by coding sent', async t => {
  const series = (encoding: string) => `portcullis_compress_responses_total{route="all",encoding="${encoding}"}`
  const before = [await metricValue(gw.adminUrl as string, series('gzip')), await metricValue(gw.adminUrl as string, series('identity'))]
  await get('/json', { 'accept-encoding': 'gzip' })
  await get('/json', { 'accept-encoding': 'gzip' })
  await get('/json')
  await get('/small', { 'accept-encoding': 'gzip' })
  t.equal(await metricValue(gw.adminUrl as string, series('gzip')), (before[0] as number) + 2)
  t.equal(await metricValue(gw.adminUrl as string, series('identity')), (before[1] as number) + 1, 'a body too small is not counted')
})

t.test('portcullis_compress_responses_total counts a body the upstream encoded by the coding sent, passed as it is or not', async t => {
  const value = async (route: string, encoding: string) => await metricValue(gw.adminUrl as string, `portcullis_compress_responses_total{route="${route}",encoding="${encoding}"}`)
  const [gzip, br, plain] = [await value('all', 'gzip'), await value('all', 'br'), await value('plain', 'gzip')]
  t.equal((await get('/gzipped', { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip', 'passed as it is')
  t.equal((await get('/gzipped', { 'accept-encoding': 'br' })).headers['content-encoding'], 'br', 'decoded, encoded again')
  t.equal((await get('/plain/gzipped', { 'accept-encoding': 'br' })).headers['content-encoding'], 'gzip', 'passed as it is: decompressForClients off')
  t.same([await value('all', 'gzip'), await value('all', 'br'), await value('plain', 'gzip')], [gzip + 1, br + 1, plain + 1])
})

t.test("a corrupt encoded body is answered 502, a truncated one cut, for a client it is decoded for: the upstream's failure", async t => {
  // Corrupt from its first bytes: nothing has gone out, so the client gets the error.
  const corrupt = await request(`${gw.url}/gzipped-corrupt`, { headers: { 'x-request-id': 'broken-corrupt' } })
  t.equal(corrupt.statusCode, 502)
  t.same(await corrupt.body.json(), { error: 'bad_gateway', message: GatewayError.UPSTREAM_BODY_INVALID.message, requestId: 'broken-corrupt' })
  t.notOk(corrupt.headers['content-encoding'], 'none of the held head is sent')
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'broken-corrupt' }), { status: 502, error: undefined })
  // Truncated: the decoded body has begun, so the response is cut and the client knows it is incomplete.
  const read = request(`${gw.url}/gzipped-truncated`, { headers: { 'x-request-id': 'broken-truncated' } }).then(res => res.body.arrayBuffer())
  await t.rejects(read, 'the client learns the body is broken')
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'broken-truncated' }), { status: 200, error: 'upstream_broken' })
  for (const id of ['broken-corrupt', 'broken-truncated']) {
    t.match(gw.logs.find(l => l.requestId === id && l.msg === 'upstream body could not be read as sent'),
      { level: 40, err: { type: 'UpstreamBodyInvalid', message: /^the upstream's gzip body does not decode: / } }, `${id}: a warning that blames the upstream`)
  }
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'not a plugin failure')
})

t.test('encodings: a listed coding the Node running lacks is skipped with a warning; none left is a config error', async t => {
  const zstdOnly = `${ONE_ROUTE_PLUGINS}      compress: { encodings: [zstd] }\n`
  if (HAS_ZSTD) await t.resolves(parseConfig(zstdOnly, 'gw.yaml', {}), 'zstd alone loads where the Node has it')
  else t.match(await issues(t, zstdOnly), [/^gw\.yaml:10:\d+ routes\[0\]\.plugins\.compress\.encodings: none of these codings is available on this Node/])
  const listed = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: quiet, match: { path: /quiet/* }, upstream: up, plugins: { compress: {} } }
  - { name: listed, match: { path: /* }, upstream: up, plugins: { compress: { encodings: [zstd, gzip] } } }
`)
  t.teardown(() => listed.close())
  const warned = listed.logs.filter(l => l.level === 40 && l.route === 'listed')
  if (HAS_ZSTD) t.same(warned, [], 'no warning')
  else t.match(warned, { length: 1, 0: { skipped: ['zstd'], msg: /zstd not available on this Node/ } }, 'zstd skipped, said so')
  // The schema's default once filled in the list: every route with the defaults warned at every load.
  t.same(listed.logs.filter(l => l.level === 40 && l.route === 'quiet'), [], 'the defaults\' zstd skipped quietly')
  const res = await request(`${listed.url}/json`, { headers: { 'accept-encoding': 'zstd, gzip' } })
  await res.body.dump()
  t.equal(res.headers['content-encoding'], HAS_ZSTD ? 'zstd' : 'gzip')
})
