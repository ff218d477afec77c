import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import zlib from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { until } from '../../test/helpers/wait.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { RATIO_FREE } from './codings.ts'

// With requests: true and no request-size, a request body was decoded with no bound: 1,826 bytes of
// `gzip, gzip` streamed 1 GiB to the upstream. Bombs of a few MiB of zeros here, so that a gateway
// without the bound still ends soon.
const MiB = 1024 * 1024
const ZEROS = Buffer.alloc(8 * MiB)
const gzip = (b: Buffer | string): Buffer => zlib.gzipSync(b)
const BOMBS: Array<[string, Buffer]> = [
  ['gzip', gzip(ZEROS)],
  ['deflate', zlib.deflateSync(ZEROS)],
  ['br', zlib.brotliCompressSync(ZEROS, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } })],
  ['gzip, gzip', gzip(gzip(ZEROS))]
]
// Two layers, each under 200:1 (about 156 and 4), the whole over 600:1: the ratio is to the bytes sent.
const STACKED = gzip(gzip(Array.from({ length: 17 }, () => randomBytes(320).toString('hex').repeat(400)).join('')))
// Past maxDecodedRequestSize's default (64 MiB), for a route without the ratio.
const LARGE = Buffer.alloc(64 * MiB + 1)
const LARGE_BR = zlib.brotliCompressSync(LARGE, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } })
// Over RATIO_FREE, at about 35:1 in gzip (logs come near 50:1): 2.5 KB blocks of text, each 40 times.
const TEXT = Array.from({ length: 33 }, () => randomBytes(1280).toString('hex').repeat(40)).join('')
const KiB = 1024

// Counts the bytes each request brought (by its x-request-id), and whether it ended whole.
const received = new Map<string, { bytes: number, whole: boolean, closed: boolean }>()
const up = await startUpstream((req, res) => {
  const seen = { bytes: 0, whole: false, closed: false }
  received.set(String(req.headers['x-request-id']), seen)
  // /early answers before it reads the body, as an upstream may.
  if (req.url === '/sized/early') res.writeHead(200, { 'content-type': 'text/plain' }).write('early')
  req.on('data', (c: Buffer) => { seen.bytes += c.length })
  req.on('end', () => { seen.whole = true; res.end(JSON.stringify({ bytes: seen.bytes, encoding: req.headers['content-encoding'] ?? null })) })
  req.on('close', () => { seen.closed = true })
})
t.teardown(() => up.close())
const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: defaults, match: { path: /defaults/* }, upstream: u, plugins: { compress: { requests: true } } }
  - { name: sized, match: { path: /sized/* }, upstream: u, plugins: { compress: { requests: true, maxDecodedRequestSize: 256KiB, maxDecodedRatio: 0 } } }
  - { name: noratio, match: { path: /noratio/* }, upstream: u, plugins: { compress: { requests: true, maxDecodedRatio: 0 } } }
  - { name: limited, match: { path: /limited/* }, upstream: u, plugins: { compress: { requests: true }, request-size: { maxBody: 64KiB } } }
`)
t.teardown(() => gw.close())

async function post (path: string, encoding: string, body: Buffer, id: string) {
  const res = await request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-encoding': encoding, 'x-request-id': id }, body })
  return { status: res.statusCode, connection: res.headers.connection, body: await res.body.json() as Record<string, unknown> }
}

/** What the upstream got of request `id`, once it is done with it. */
async function upstreamGot (id: string) {
  await until(() => received.get(id)?.closed === true)
  return received.get(id)
}

t.test('requests: true alone: a bomb is refused 413 past 1 MiB at over 200:1 (maxDecodedRatio), the upstream request aborted', async t => {
  for (const [encoding, body] of BOMBS) {
    const id = `ratio-${encoding.replace(', ', '-')}`
    const r = await post('/defaults/x', encoding, body, id)
    t.match(r, {
      status: 413,
      connection: 'close',
      body: { error: 'body_too_large', message: /^the request body is too large: it decodes to over 200 times its size \(maxDecodedRatio\): \d+ bytes from \d+$/, requestId: id }
    }, `${encoding} (${body.length} bytes for ${ZEROS.length})`)
    const got = await upstreamGot(id)
    t.ok(got === undefined || (!got.whole && got.bytes <= RATIO_FREE), `${encoding}: the upstream got ${got?.bytes ?? 0} bytes, no more than RATIO_FREE, and no end`)
  }
  t.match(await post('/defaults/x', 'gzip, gzip', STACKED, 'stacked'), { status: 413, body: { message: /maxDecodedRatio/ } }, `gzip, gzip, each layer under 200:1, ${STACKED.length} bytes for ${17 * 256000}`)
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'not a plugin failure')
})

t.test('a body compressing as real ones do passes whole past RATIO_FREE; a small one at any ratio', async t => {
  for (const [encoding, body] of [['gzip', gzip(TEXT)], ['br', zlib.brotliCompressSync(TEXT, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } })], ['gzip, gzip', gzip(gzip(TEXT))]] as const) {
    t.same(await post('/defaults/x', encoding, body, `text-${encoding.replace(', ', '-')}`), { status: 200, connection: 'keep-alive', body: { bytes: TEXT.length, encoding: null } },
      `${encoding}: ${TEXT.length} bytes at ${(TEXT.length / body.length).toFixed(0)}:1`)
  }
  t.same((await post('/defaults/x', 'gzip', gzip(Buffer.alloc(RATIO_FREE)), 'free')).body, { bytes: RATIO_FREE, encoding: null }, `${RATIO_FREE} zeros, at over 1,000:1`)
})

t.test('maxDecodedRequestSize: a body decoding past it is refused 413; one decoding to it passes', async t => {
  const over = Buffer.alloc(256 * KiB + 1, 'a')
  for (const [encoding, body] of [['gzip', gzip(over)], ['gzip, gzip', gzip(gzip(over))]] as const) {
    t.match(await post('/sized/x', encoding, body, `sized-${encoding.replace(', ', '-')}`), {
      status: 413,
      body: { error: 'body_too_large', message: 'the request body is too large: it decodes to more than 262144 bytes (maxDecodedRequestSize)' }
    }, `${encoding}: 256 KiB and a byte`)
  }
  t.same((await post('/sized/x', 'gzip', gzip(over.subarray(1)), 'sized-exact')).body, { bytes: 256 * KiB, encoding: null }, 'exactly maxDecodedRequestSize: whole')
  // The default, 64 MiB, with the ratio off.
  t.match(await post('/noratio/x', 'br', LARGE_BR, 'large'), { status: 413, body: { message: `the request body is too large: it decodes to more than ${64 * MiB} bytes (maxDecodedRequestSize)` } }, '64 MiB and a byte, by default')
  const got = await upstreamGot('large')
  t.ok(got !== undefined && !got.whole && got.bytes <= 64 * MiB, `the upstream got ${got?.bytes} bytes and no end`)
  t.same((await post('/noratio/x', 'gzip', gzip(ZEROS), 'noratio')).body, { bytes: ZEROS.length, encoding: null }, 'maxDecodedRatio: 0: a bomb under the size passes')
})

t.test('request-size\'s maxBody, smaller, still refuses first, counting decoded bytes', async t => {
  t.match(await post('/limited/x', 'gzip', BOMBS[0]?.[1] as Buffer, 'limited'), { status: 413, body: { error: 'body_too_large', message: 'the request body is larger than 65536 bytes' } })
})

t.test('a body past the bound once the upstream has answered: the answer is broken off, no 413 after it', async t => {
  // A first gzip member, then one past the bound once the answer began.
  const [first, second] = [gzip('hello'), gzip(Buffer.alloc(256 * KiB, 'a'))]
  const chunk = (b: Buffer): string => `${b.length.toString(16)}\r\n${b.toString('latin1')}\r\n`
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  let answer = ''
  socket.setEncoding('latin1')
  socket.on('data', (c: string) => { answer += c })
  socket.on('error', () => {})
  socket.write('POST /sized/early HTTP/1.1\r\nHost: x\r\nX-Request-Id: early\r\nConnection: close\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n' + chunk(first), 'latin1')
  t.ok(await until(() => answer.includes('early')), 'the upstream answered first')
  socket.write(chunk(second) + '0\r\n\r\n', 'latin1')
  await new Promise(resolve => socket.once('close', resolve))
  t.match(answer, /^HTTP\/1.1 200 /)
  t.notMatch(answer, /HTTP\/1\.1 413|body_too_large/, 'no second answer')
  t.notMatch(answer, /\r\n0\r\n\r\n$/, 'the answer does not end as if complete')
  t.notOk((await upstreamGot('early'))?.whole, 'the upstream request was aborted')
  t.match(await waitForLog(gw.logs, { msg: 'request', requestId: 'early' }), { status: 200, error: 'request_refused' }, 'logged as cut by the gateway')
})
