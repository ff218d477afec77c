import t, { type Test } from 'tap'
import zlib from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { available } from './codings.ts'

// compress (880) sits above the cache (500): the cache stores the upstream's bytes once, and every
// client, hit or miss, gets the encoding it accepts from compress.
const BODY = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) })
const DECODE: Record<string, (b: Buffer) => Buffer> = { br: zlib.brotliDecompressSync, gzip: zlib.gunzipSync, identity: b => b }

/** A cached and compressed route /items to an upstream answering BODY (more routes to it in `routes`), with an admin listener. */
async function itemsGateway (t: Test, routes = '') {
  let fetched = 0
  const up = await startUpstream((req, res) => {
    req.resume()
    fetched++
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', 'content-length': String(Buffer.byteLength(BODY)) }).end(BODY)
  })
  const gw = await startGateway(`admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: items
    match: { path: /items }
    upstream: u
    plugins: { cache: {}, compress: {} }
${routes}`)
  t.teardown(async () => { await gw.close(); await up.close() })
  return { gw, fetched: () => fetched }
}

t.test('compress and cache on one route: stored once as the upstream sent it, served in each client\'s encoding', async t => {
  const { gw, fetched } = await itemsGateway(t)

  const statuses: string[] = []
  for (const [accept, encoding] of [['br', 'br'], ['gzip', 'gzip'], ['', 'identity'], ['gzip;q=0.5, br', 'br']] as const) {
    const res = await request(`${gw.url}/items`, { headers: accept === '' ? {} : { 'accept-encoding': accept } })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.headers['content-encoding'] ?? 'identity', encoding, `Accept-Encoding "${accept}" gets ${encoding}`)
    t.equal((DECODE[encoding] as (b: Buffer) => Buffer)(body).toString(), BODY, 'the upstream\'s body, decoded')
    t.match(String(res.headers.vary), /accept-encoding/i)
    statuses.push(String(res.headers['cache-status']))
  }
  t.match(statuses[0], /fwd=uri-miss/, 'the first is a miss')
  t.ok(statuses.slice(1).every(s => /;\s*hit/.test(s)), `the others are hits: ${statuses.slice(1).join(' | ')}`)
  t.equal(fetched(), 1, 'one upstream request: every later client was a hit')
})

t.test('a stored body is encoded once per coding: from its third hit on it is sent from memory, with its length', async t => {
  const { gw } = await itemsGateway(t, `  - name: small
    match: { path: /small }
    upstream: u
    plugins: { cache: {}, compress: { keepEncoded: 1KiB } }
`)
  const get = async (path: string, accept: string, id: string) => {
    const res = await request(`${gw.url}${path}`, { headers: { 'accept-encoding': accept, 'x-request-id': id } })
    const body = Buffer.from(await res.body.arrayBuffer())
    const line = await waitForLog(gw.logs, { msg: 'request', requestId: id })
    return { length: res.headers['content-length'], encoding: res.headers['content-encoding'], cs: String(res.headers['cache-status']), body, logged: line?.bytes }
  }
  const seen: Array<string | string[] | undefined> = []
  let last = 0
  for (let i = 0; i < 5; i++) {
    const r = await get('/items', 'gzip', `gzip-${i}`)
    t.equal(zlib.gunzipSync(r.body).toString(), BODY, `gzip answer ${i}`)
    t.equal(r.logged, r.body.length, 'the access log counts the bytes sent, once')
    seen.push(r.length)
    last = r.body.length
  }
  t.same(seen.map(l => l !== undefined), [false, false, false, true, true], 'the miss, two hits encoded as they go (the second keeps its output), then the kept copy')
  t.equal(Number(seen[4]), last, 'Content-Length: the copy\'s')
  const br = await get('/items', 'br', 'br-0')
  t.equal(br.length, undefined, 'another coding: encoded as it goes')
  await get('/items', 'br', 'br-1')
  const kept = await get('/items', 'br;q=1, gzip;q=0.5', 'br-2')
  t.same([kept.encoding, kept.length !== undefined, zlib.brotliDecompressSync(kept.body).toString()], ['br', true, BODY], 'then kept as well')
  for (let i = 0; i < 4; i++) t.equal((await get('/small', 'gzip', `small-${i}`)).length, undefined, 'keepEncoded smaller than the copy: none kept')
  const keptBytes = await metricValue(gw.adminUrl as string, 'portcullis_compress_kept_bytes{route="items"}')
  t.equal(keptBytes, Buffer.byteLength(BODY) + last + Number(kept.length), 'the gauge: the body and its two copies')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_compress_kept_bytes{route="small"}'), 0)
})

t.test('a stored body the upstream encoded, for clients that do not take its coding: decoded (and encoded again) once, then sent from memory', async t => {
  const br = zlib.brotliCompressSync(BODY)
  const up = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'br', 'cache-control': 'max-age=60' }).end(br)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: encoded, match: { path: /encoded }, upstream: u, plugins: { cache: {}, compress: {} } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  for (const [accept, sent] of [['gzip', 'gzip'], ['', 'identity'], ['br', 'br']] as const) {
    const lengths: Array<string | string[] | undefined> = []
    for (let i = 0; i < 4; i++) {
      const res = await request(`${gw.url}/encoded`, { headers: accept === '' ? {} : { 'accept-encoding': accept } })
      const body = Buffer.from(await res.body.arrayBuffer())
      t.equal(res.headers['content-encoding'] ?? 'identity', sent, `Accept-Encoding "${accept}": ${sent}`)
      t.equal((DECODE[sent] as (b: Buffer) => Buffer)(body).toString(), BODY, `answer ${i}: the body`)
      if (res.headers['content-length'] !== undefined) t.equal(Number(res.headers['content-length']), body.length, 'the length of what is sent')
      lengths.push(res.headers['content-length'])
    }
    // The upstream's coding is sent as stored; the others from the third hit of the stored body on.
    const expected = sent === 'br' ? [true, true, true, true] : accept === 'gzip' ? [false, false, false, true] : [false, true, true, true]
    t.same(lengths.map(l => l !== undefined), expected, `${sent}: from memory once kept`)
  }
})

t.test('a conditional hit answered 304 by the cache: the Vary and the ETag the 200 had for that client', async t => {
  const up = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', etag: '"e1"' }).end(BODY)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: tagged, match: { path: /tagged }, upstream: u, plugins: { cache: {}, compress: {} } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  for (const accept of ['gzip', '']) {
    const headers: Record<string, string> = accept === '' ? {} : { 'accept-encoding': accept }
    const full = await request(`${gw.url}/tagged`, { headers })
    await full.body.arrayBuffer()
    const etag = String(full.headers.etag)
    t.equal(etag, accept === '' ? '"e1"' : 'W/"e1"', `Accept-Encoding "${accept}": the 200's ETag`)
    const revalidated = await request(`${gw.url}/tagged`, { headers: { ...headers, 'if-none-match': etag } })
    await revalidated.body.arrayBuffer()
    t.equal(revalidated.statusCode, 304)
    t.match(String(revalidated.headers['cache-status']), /; hit/)
    t.equal(revalidated.headers.etag, etag, 'the 304 carries the ETag the client holds')
    t.equal(revalidated.headers.vary, full.headers.vary, 'and the Vary of the 200')
    t.equal(revalidated.headers['content-encoding'], undefined)
  }
})

// It had none: compress passes 206s by, never encoding a part, and added no Vary to them.
t.test('a range answered from the cache carries the Vary its 200 has (RFC 9110 15.3.7), its bytes as stored', async t => {
  const { gw, fetched } = await itemsGateway(t)
  const full = await request(`${gw.url}/items`, { headers: { 'accept-encoding': 'gzip' } })
  await full.body.arrayBuffer()
  t.equal(full.headers.vary, 'accept-encoding', 'the 200')
  const cases: Array<[string, string | undefined, string | undefined]> = [
    ['bytes=0-99', 'gzip', BODY.slice(0, 100)], ['bytes=100-199', undefined, BODY.slice(100, 200)], ['bytes=0-9, 50-59', 'br', undefined]
  ]
  for (const [range, accept, part] of cases) {
    const res = await request(`${gw.url}/items`, { headers: { range, ...(accept === undefined ? {} : { 'accept-encoding': accept }) } })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.statusCode, 206, range)
    t.match(String(res.headers['cache-status']), /; hit/, `${range}: a hit`)
    t.equal(res.headers.vary, full.headers.vary, `${range}, Accept-Encoding ${String(accept)}: the 200's Vary`)
    t.equal(res.headers['content-encoding'], undefined, `${range}: not encoded`)
    t.equal(Number(res.headers['content-length']), body.length, `${range}: with its length`)
    if (part !== undefined) t.equal(body.toString(), part, `${range}: the stored bytes`)
    else t.match(String(res.headers['content-type']), /^multipart\/byteranges/, `${range}: parts apart`)
  }
  t.equal(fetched(), 1, 'every range from the stored 200')
})

// The client's Accept-Encoding went upstream as sent: on Node 20 a Chrome-style `..., zstd` got a zstd
// answer without Vary, which compress cannot decode there, and the cache served it to every client.
t.test('upstream, Accept-Encoding lists only the codings compress decodes here, one spelling per meaning', async t => {
  const zstd = available('zstd')
  // Node 22.15 and later; typed loosely for older @types/node.
  const z = zlib as unknown as Record<string, ((b: Buffer | string) => Buffer) | undefined>
  const received: Array<string | undefined> = []
  const up = await startUpstream((req, res) => {
    req.resume()
    const accept = req.headers['accept-encoding']
    received.push(accept)
    // An upstream that answers zstd to whoever lists it, and does not say it varies.
    if (accept?.includes('zstd') === true) res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'zstd', 'cache-control': 'max-age=60' }).end(z.zstdCompressSync?.(BODY) ?? 'zstd, not decodable on this Node')
    else res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', vary: 'accept-encoding' }).end(BODY)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: plain, match: { path: /plain }, upstream: u, plugins: { compress: { encodings: [gzip, br] } } }
  - { name: cached, match: { path: /cached }, upstream: u, plugins: { cache: {}, compress: {} } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const sent = async (accept: string | undefined): Promise<string | undefined> => {
    const res = await request(`${gw.url}/plain`, { headers: accept === undefined ? {} : { 'accept-encoding': accept } })
    await res.body.arrayBuffer()
    return received.at(-1)
  }
  const cases: Array<[string | undefined, string]> = [
    // By q-value, then the route's order (gzip, br), then the other codings decoded here.
    ['gzip, deflate, br, zstd', zstd ? 'gzip, br, zstd, deflate' : 'gzip, br, deflate'],
    ['zstd', zstd ? 'zstd' : 'identity'],
    ['compress, X-GZIP;q=0.5;level=1', 'gzip;q=0.5'],
    ['*;q=0.3, br', zstd ? 'br, gzip;q=0.3, zstd;q=0.3, deflate;q=0.3' : 'br, gzip;q=0.3, deflate;q=0.3'],
    ['identity;q=0.5, gzip;q=0.8, br;q=0', 'gzip;q=0.8, identity;q=0.5'],
    ['', 'identity'],
    // None: `identity`, what compress sends this client (see no-accept-encoding.test.ts).
    [undefined, 'identity']
  ]
  for (const [accept, upstream] of cases) t.equal(await sent(accept), upstream, `client ${JSON.stringify(accept)}: upstream ${JSON.stringify(upstream)}`)

  // Through the cache: each client gets its coding, and equivalent headers are one variant.
  const statuses: string[] = []
  for (const [accept, encoding] of [['gzip, deflate, br, zstd', zstd ? 'zstd' : 'br'], ['gzip', 'gzip'], ['', 'identity'], ['deflate, gzip, br, zstd', zstd ? 'zstd' : 'br']] as const) {
    const res = await request(`${gw.url}/cached`, { headers: accept === '' ? {} : { 'accept-encoding': accept } })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.headers['content-encoding'] ?? 'identity', encoding, `cached, Accept-Encoding "${accept}" gets ${encoding}`)
    t.equal((encoding === 'zstd' ? z.zstdDecompressSync : DECODE[encoding])?.(body).toString(), BODY, 'the body, decoded')
    statuses.push(String(res.headers['cache-status']))
  }
  t.match(statuses[3], /;\s*hit/, `curl's order after Chrome's: one variant, a hit (${statuses[3]})`)
})

// `identity, gzip` was read as no coding compress knows: gzip bytes went to a client that accepts none.
t.test('a Content-Encoding list of one coding and identity is that coding; a plain body labelled identity loses the label when sent plain', async t => {
  const gz = zlib.gzipSync(BODY)
  const up = await startUpstream((req, res) => {
    req.resume()
    const label = req.url?.slice(1).replaceAll('_', ' ') as string
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': label }).end(label.includes('gzip') ? gz : BODY)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: u, plugins: { compress: {} } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  for (const label of ['identity,_gzip', 'gzip,_identity', 'gzip,_,']) {
    for (const [accept, sent] of [['', 'identity'], ['br', 'br'], ['gzip', label.replaceAll('_', ' ')]] as const) {
      const res = await request(`${gw.url}/${label}`, { headers: accept === '' ? {} : { 'accept-encoding': accept } })
      const body = Buffer.from(await res.body.arrayBuffer())
      t.equal(res.headers['content-encoding'] ?? 'identity', sent, `${label}, Accept-Encoding "${accept}": ${sent}`)
      t.equal(res.headers.vary, 'accept-encoding', 'with Vary')
      t.equal((sent === 'identity' ? body : sent === 'br' ? zlib.brotliDecompressSync(body) : zlib.gunzipSync(body)).toString(), BODY)
    }
  }
  for (const method of ['GET', 'HEAD'] as const) {
    const res = await request(`${gw.url}/identity`, { method })
    const body = Buffer.from(await res.body.arrayBuffer())
    t.equal(res.headers['content-encoding'], undefined, `${method}, a plain body labelled identity, a client accepting nothing: no label`)
    t.equal(res.headers.vary, 'accept-encoding')
    if (method === 'GET') t.equal(body.toString(), BODY)
  }
})

/** A gateway on `routes` to an upstream answering with `answer`, and the Accept-Encoding each request took upstream. */
async function acceptGateway (t: Test, routes: string, answer: (accept: string | undefined, path: string, res: import('node:http').ServerResponse) => void) {
  const received: Array<string | undefined> = []
  const up = await startUpstream((req, res) => {
    req.resume()
    received.push(req.headers['accept-encoding'])
    answer(req.headers['accept-encoding'], req.url as string, res)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
${routes}`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const get = async (path: string, accept: string, method: 'GET' | 'HEAD' = 'GET') => {
    const res = await request(`${gw.url}${path}`, { method, headers: { 'accept-encoding': accept } })
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()), upstream: received.at(-1) }
  }
  return get
}

// `identity;q=0` and `*;q=0` went upstream as `identity`, asking for the plain body the client refused;
// `*;q=0, gzip` as `gzip`, which leaves identity acceptable.
t.test('upstream, a refused identity stays refused; nothing acceptable left goes as identity;q=0, and the upstream\'s answer is passed', async t => {
  const zstd = available('zstd')
  const get = await acceptGateway(t, `  - { name: r, match: { path: /* }, upstream: u, plugins: { compress: {} } }
`, (accept, path, res) => {
    // An upstream that refuses what it cannot give (RFC 9110 15.5.7) on /strict, and one that sends plain whatever is asked.
    if (path === '/strict' && accept === 'identity;q=0') res.writeHead(406, { 'content-type': 'application/json' }).end('{"error":"not_acceptable"}')
    else res.writeHead(200, { 'content-type': 'application/json' }).end(BODY)
  })
  const cases: Array<[string, string]> = [
    ['identity;q=0', 'identity;q=0'],
    ['*;q=0', 'identity;q=0'],
    ['*;q=0, gzip', 'gzip, identity;q=0'],
    ['gzip;q=0.5, *;q=0', 'gzip;q=0.5, identity;q=0'],
    ['zstd, *;q=0', zstd ? 'zstd, identity;q=0' : 'identity;q=0'],
    ['*;q=0, identity;q=0.5', 'identity'],
    ['*;q=0.5', zstd ? 'br;q=0.5, zstd;q=0.5, gzip;q=0.5, deflate;q=0.5' : 'br;q=0.5, gzip;q=0.5, deflate;q=0.5'],
    ['zstd', zstd ? 'zstd' : 'identity']
  ]
  for (const [accept, upstream] of cases) t.equal((await get('/r', accept)).upstream, upstream, `client ${JSON.stringify(accept)}: upstream ${JSON.stringify(upstream)}`)

  const plain = await get('/r', 'identity;q=0')
  t.same([plain.status, plain.headers['content-encoding'], plain.body.toString()], [200, undefined, BODY], 'a plain answer: sent plain (compress answers no 406)')
  const strict = await get('/strict', '*;q=0')
  t.same([strict.status, strict.body.toString()], [406, '{"error":"not_acceptable"}'], 'an upstream\'s 406: passed')
  const gz = await get('/r', '*;q=0, gzip')
  t.equal(zlib.gunzipSync(gz.body).toString(), BODY, 'a client that accepts gzip gets it')
})

// `*, br` then 63 empty parameters then `;q=0` went upstream as `br, gzip, deflate`, and compress sent br:
// the element cut at the 64th item was dropped, its refusal unread, and `*` accepted br.
t.test('a header longer than 64 elements and parameters: read as identity, upstream and by compress', async t => {
  const br = zlib.brotliCompressSync(BODY)
  const get = await acceptGateway(t, `  - { name: r, match: { path: /* }, upstream: u, plugins: { compress: {} } }
`, (accept, path, res) => {
    // /asked answers br to whoever asks for it; /br to everyone.
    if (path === '/br' || accept?.includes('br') === true) res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'br', vary: 'accept-encoding' }).end(br)
    else res.writeHead(200, { 'content-type': 'application/json', vary: 'accept-encoding' }).end(BODY)
  })
  const cut = `*, br${';'.repeat(63)};q=0`
  // Over 256 characters: read per response, never kept.
  const long = `*, ${'x, '.repeat(100)}br;q=0`
  for (const accept of [cut, long]) {
    for (const path of ['/asked', '/br']) {
      const res = await get(path, accept)
      t.equal(res.upstream, 'identity', `${accept.length} characters: the upstream is asked for the plain body`)
      t.same([res.headers['content-encoding'], res.body.toString()], [undefined, BODY], `${path}, ${accept.length} characters: sent plain`)
    }
  }
  const whole = `*, br${';'.repeat(61)};q=0`
  t.equal((await get('/asked', whole)).upstream, available('zstd') ? 'zstd, gzip, deflate' : 'gzip, deflate', 'a refusal at the 64th item is read')
})

// With decompressForClients false compress decodes no answer, so the rewrite spared no client a coding,
// and cost this one those it accepts (zstd on Node 20).
t.test('decompressForClients false: the client\'s Accept-Encoding goes upstream as sent', async t => {
  const get = await acceptGateway(t, `  - { name: r, match: { path: /* }, upstream: u, plugins: { compress: { decompressForClients: false } } }
`, (accept, path, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(BODY) })
  for (const accept of ['gzip, deflate, br, zstd', 'zstd', 'identity;q=0', '*;q=0.5']) t.equal((await get('/r', accept)).upstream, accept, JSON.stringify(accept))
})

// compressResponse returned below minSize before dropping the label.
t.test('a plain body labelled identity below minSize loses the label', async t => {
  const get = await acceptGateway(t, `  - { name: r, match: { path: /* }, upstream: u, plugins: { compress: {} } }
`, (accept, path, res) => { res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'identity', 'content-length': '7' }).end('{"a":1}') })
  for (const method of ['GET', 'HEAD'] as const) {
    for (const accept of ['gzip', 'identity']) {
      const res = await get('/r', accept, method)
      t.same([res.headers['content-encoding'], res.headers['content-length'], res.headers.vary], [undefined, '7', undefined], `${method}, Accept-Encoding ${accept}: no label, its length, no Vary`)
      if (method === 'GET') t.equal(res.body.toString(), '{"a":1}')
    }
  }
})
