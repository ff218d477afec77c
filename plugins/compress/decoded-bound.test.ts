import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import zlib from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { RATIO_FREE } from './codings.ts'

process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// An upstream's few KiB that decode to far more (stored objects carry their own Content-Encoding)
// were decoded whole for a client not taking their coding, and encoded again: a 1 GiB bomb cost
// seconds of CPU. Bombs of 16 MiB of zeros here, so that a gateway without the bound still ends soon.
const MiB = 1024 * 1024
const ZEROS = Buffer.alloc(16 * MiB)
const BR_BOMB = zlib.brotliCompressSync(ZEROS, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } })
const GZIP_BOMB = zlib.gzipSync(ZEROS)
const DEFLATE_BOMB = zlib.deflateSync(ZEROS)
const EXACT = zlib.gzipSync(Buffer.alloc(MiB, 'a'))
// 4 MiB of zeros: cut at RATIO_FREE (1 MiB); with the ratio free up to 8 MiB it went out whole.
const SMALL_BOMB = zlib.brotliCompressSync(Buffer.alloc(4 * MiB), { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } })
// Over RATIO_FREE, at about 80:1 (logs come near 50:1): 2.5 KB blocks of text, each a hundred times.
const TEXT = Array.from({ length: 42 }, () => randomBytes(1280).toString('hex').repeat(100)).join('')
// In two gzip members, the second a third of the output from a fraction of the bytes: the ratio counts the bytes of both.
const SPLIT = 7 * MiB
const TEXT_GZIP = Buffer.concat([zlib.gzipSync(TEXT.slice(0, SPLIT)), zlib.gzipSync(TEXT.slice(SPLIT))])
const BODIES: Record<string, [string, Buffer]> = { '/br-bomb': ['br', BR_BOMB], '/gzip-bomb': ['gzip', GZIP_BOMB], '/deflate-bomb': ['deflate', DEFLATE_BOMB], '/exact': ['gzip', EXACT], '/small-bomb': ['br', SMALL_BOMB], '/text': ['gzip', TEXT_GZIP] }

async function gateway (t: Test) {
  const up = await startUpstream((req, res) => {
    req.resume()
    const [coding, body] = BODIES[(req.url as string).replace(/^\/\w+/, '')] as [string, Buffer]
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding, 'content-length': body.length, 'cache-control': 'max-age=60' }).end(body)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: sized, match: { path: /sized/* }, upstream: u, plugins: { compress: { maxDecodedSize: 1MiB } } }
  - { name: ratio, match: { path: /ratio/* }, upstream: u, plugins: { compress: {} } }
  - { name: off, match: { path: /off/* }, upstream: u, plugins: { compress: { maxDecodedRatio: 0 } } }
  - { name: cached, match: { path: /cached/* }, upstream: u, plugins: { cache: {}, compress: { maxDecodedSize: 1MiB } } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  /** The status, Cache-Status, the bytes the client got, and whether the body broke off. */
  const get = async (path: string, accept: string, id: string) => {
    const res = await request(`${gw.url}${path}`, { headers: { 'accept-encoding': accept, 'x-request-id': id } })
    const got = { status: res.statusCode, cache: String(res.headers['cache-status']), received: 0, broken: false }
    try {
      for await (const chunk of res.body) got.received += (chunk as Buffer).length
    } catch {
      got.broken = true
    }
    return got
  }
  return { gw, get }
}

/** A body cut for its decoded size: answered 502 while the head was held, or cut after it; a warning blaming the upstream. */
async function cut (t: Test, gw: Awaited<ReturnType<typeof gateway>>['gw'], r: { status: number, broken: boolean }, id: string, message: RegExp): Promise<void> {
  t.ok((r.status === 502 && !r.broken) || (r.status === 200 && r.broken), `${id}: 502, or cut (got ${r.status}, ${r.broken ? 'cut' : 'whole'})`)
  const line = await waitForLog(gw.logs, { msg: 'request', requestId: id })
  t.ok(line?.status === 502 || line?.error === 'upstream_broken', `${id}: the access line says so`)
  t.match(gw.logs.find(l => l.requestId === id && l.msg === 'upstream body could not be read as sent'),
    { level: 40, err: { type: 'UpstreamBodyInvalid', message } }, `${id}: a warning that blames the upstream`)
}

t.test('maxDecodedSize: a body decoding past it is cut, not decoded whole; one decoding to it passes', async t => {
  const { gw, get } = await gateway(t)
  // The probe's case: brotli from the upstream, a client taking gzip.
  const br = await get('/sized/br-bomb', 'gzip', 'sized-br')
  await cut(t, gw, br, 'sized-br', /^the upstream's br body is not decoded whole: it decodes to more than 1048576 bytes \(maxDecodedSize\)$/)
  const gz = await get('/sized/gzip-bomb', 'br', 'sized-gzip')
  await cut(t, gw, gz, 'sized-gzip', /^the upstream's gzip body is not decoded whole: it decodes to more than 1048576 bytes \(maxDecodedSize\)$/)
  const plain = await get('/sized/br-bomb', 'identity', 'sized-plain')
  await cut(t, gw, plain, 'sized-plain', /maxDecodedSize/)
  t.ok(plain.received <= MiB, `a client taking no coding got ${plain.received} bytes of it, at most maxDecodedSize`)
  t.match(await get('/sized/exact', 'identity', 'sized-exact'), { status: 200, received: MiB, broken: false }, 'exactly maxDecodedSize: whole')
  t.match(await get('/sized/br-bomb', 'br', 'sized-passed'), { status: 200, received: BR_BOMB.length, broken: false }, 'a client taking the coding: passed as it is, nothing decoded')
  t.notOk(gw.logs.some(l => l.msg === 'plugin failed'), 'not a plugin failure')
})

t.test('maxDecodedRatio (200 by default): past RATIO_FREE, a bomb is cut; a large body compressing as real ones do passes', async t => {
  const { gw, get } = await gateway(t)
  for (const coding of ['br', 'gzip', 'deflate']) {
    const r = await get(`/ratio/${coding}-bomb`, 'identity', `ratio-${coding}`)
    await cut(t, gw, r, `ratio-${coding}`, new RegExp(`^the upstream's ${coding} body is not decoded whole: it decodes to over 200 times its size \\(maxDecodedRatio\\): \\d+ bytes from \\d+$`))
    t.ok(r.received <= RATIO_FREE, `${coding}: ${r.received} bytes sent of ${ZEROS.length}, no more than RATIO_FREE`)
  }
  const small = await get('/ratio/small-bomb', 'identity', 'ratio-small')
  await cut(t, gw, small, 'ratio-small', /maxDecodedRatio/)
  t.ok(small.received <= RATIO_FREE, `4 MiB of zeros: ${small.received} bytes sent, no more than RATIO_FREE (1 MiB)`)
  t.match(await get('/ratio/text', 'identity', 'ratio-text'), { status: 200, received: TEXT.length, broken: false }, `${TEXT.length} bytes at ${(TEXT.length / TEXT_GZIP.length).toFixed(1)}:1: whole`)
  t.match(await get('/off/br-bomb', 'identity', 'off'), { status: 200, received: ZEROS.length, broken: false }, 'maxDecodedRatio: 0, under maxDecodedSize: whole')
})

t.test('a stored bomb is cut when a hit decodes it for a client taking no coding, as every decode after', async t => {
  const { gw, get } = await gateway(t)
  t.match(await get('/cached/br-bomb', 'br', 'stored'), { status: 200, received: BR_BOMB.length, broken: false }, 'stored as the upstream sent it')
  // The cache drops an entry whose body could not be read as sent: the later ones are fetched anew.
  for (let i = 0; i < 3; i++) {
    const r = await get('/cached/br-bomb', 'identity', `again-${i}`)
    await cut(t, gw, r, `again-${i}`, /maxDecodedSize/)
    t.ok(r.received <= MiB, `${i}: ${r.received} bytes sent`)
    if (i === 0) t.match(r.cache, /; hit/, 'the first a hit')
  }
})
