import t, { type Test } from 'tap'
import zlib from 'node:zlib'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'

// A client without Accept-Encoding sent none upstream, and RFC 9110 12.5.3 lets a server pick any
// coding then: a zstd answer, which Node 20 cannot decode, went as it was to that client and, on a
// cache route, was stored and served to every client.
const BODY = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}` })) })
// Node 22.15 and later; typed loosely for older @types/node.
const z = zlib as unknown as Record<string, ((b: Buffer | string) => Buffer) | undefined>
const ZSTD = z.zstdCompressSync?.(BODY) ?? Buffer.from('zstd, not decodable on this Node')
const DECODE: Record<string, (b: Buffer) => Buffer> = { br: zlib.brotliDecompressSync, gzip: zlib.gunzipSync, identity: b => b }

type Answer = (accept: string | undefined, res: ServerResponse) => void

/** A gateway whose routes (`/cached`, `/varies` with a cache, `/plain`, `/passed` with decompressForClients false) go to `answer`. */
async function gateway (t: Test, answer: Answer) {
  const received: Array<string | undefined> = []
  const up = await startUpstream((req, res) => {
    req.resume()
    received.push(req.headers['accept-encoding'])
    answer(req.headers['accept-encoding'], res)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: cached, match: { path: /cached }, upstream: u, plugins: { cache: {}, compress: {} } }
  - { name: varies, match: { path: /varies }, upstream: u, plugins: { cache: {}, compress: {} } }
  - { name: plain, match: { path: /plain }, upstream: u, plugins: { compress: {} } }
  - { name: passed, match: { path: /passed }, upstream: u, plugins: { compress: { decompressForClients: false } } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const get = async (path: string, accept?: string, method: 'GET' | 'HEAD' = 'GET') => {
    const before = received.length
    const res = await request(`${gw.url}${path}`, { method, headers: accept === undefined ? {} : { 'accept-encoding': accept } })
    const body = Buffer.from(await res.body.arrayBuffer())
    const encoding = String(res.headers['content-encoding'] ?? 'identity')
    return { encoding, vary: res.headers.vary, body, upstream: received.length > before ? received.at(-1) : 'not asked' }
  }
  return get
}

/** A server that negotiates: zstd first, any coding being acceptable without the header; gzip if asked; else plain. */
const negotiating = (vary: boolean): Answer => (accept, res) => {
  const headers = { 'content-type': 'application/json', 'cache-control': 'max-age=60', ...(vary ? { vary: 'accept-encoding' } : {}) }
  if (accept === undefined) res.writeHead(200, { ...headers, 'content-encoding': 'zstd' }).end(ZSTD)
  else if (/\bgzip\b/.test(accept)) res.writeHead(200, { ...headers, 'content-encoding': 'gzip' }).end(zlib.gzipSync(BODY))
  else res.writeHead(200, headers).end(BODY)
}

t.test('a client without Accept-Encoding: the upstream is asked for identity, and a stored answer is one every client can be given', async t => {
  const get = await gateway(t, negotiating(false))
  const none = await get('/cached')
  t.equal(none.upstream, 'identity', 'the upstream is asked for the plain body')
  t.same([none.encoding, none.body.toString()], ['identity', BODY], 'the client gets it plain')
  // The upstream says nothing of varying: its answer is stored for every client.
  for (const accept of ['gzip', 'br', undefined]) {
    const hit = await get('/cached', accept)
    t.equal(hit.upstream, 'not asked', `${String(accept)}: a hit`)
    t.equal(DECODE[hit.encoding]?.(hit.body).toString(), BODY, `${String(accept)}: ${hit.encoding}, decodes to the body`)
  }

  const plain = await get('/plain')
  t.same([plain.upstream, plain.encoding, plain.body.toString()], ['identity', 'identity', BODY], 'no cache: the same')
  const head = await get('/plain', undefined, 'HEAD')
  t.same([head.upstream, head.encoding], ['identity', 'identity'], 'HEAD: the same')
  // decompressForClients false: compress decodes no answer, the header goes as the client sent it, none here.
  t.equal((await get('/passed')).upstream, undefined, 'decompressForClients false: none sent')
})

t.test('an upstream that varies on Accept-Encoding: clients without it share the variant of those that accept only identity', async t => {
  const get = await gateway(t, negotiating(true))
  const none = await get('/varies')
  t.same([none.upstream, none.encoding, none.body.toString()], ['identity', 'identity', BODY])
  for (const accept of [undefined, 'identity', 'compress']) {
    const hit = await get('/varies', accept)
    t.same([hit.upstream, hit.encoding, hit.body.toString()], ['not asked', 'identity', BODY], `${String(accept)}: a hit, plain`)
  }
  const gz = await get('/varies', 'gzip')
  t.same([gz.upstream, gz.encoding, zlib.gunzipSync(gz.body).toString()], ['gzip', 'gzip', BODY], 'gzip: its own variant')
})

// What compress cannot help: an upstream answering a coding it was not asked for, which compress cannot
// decode. It goes as it is, without Vary; a cache stores it for the requests that go upstream alike,
// which the upstream answers so.
t.test('an upstream that answers a coding compress cannot decode whatever it is asked: passed as it is', async t => {
  for (const coding of ['x-foo', 'compress', ...(z.zstdCompressSync === undefined ? ['zstd'] : [])]) {
    for (const vary of [false, true]) {
      const get = await gateway(t, (accept, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', 'content-encoding': coding, ...(vary ? { vary: 'accept-encoding' } : {}) }).end('opaque')
      })
      const path = vary ? '/varies' : '/cached'
      const none = await get(path)
      t.same([none.upstream, none.encoding, none.body.toString()], ['identity', coding, 'opaque'], `${coding}, Vary ${String(vary)}: as sent`)
      t.equal(none.vary, vary ? 'accept-encoding' : undefined, 'the upstream\'s Vary, none added')
      const identity = await get(path, 'identity')
      t.same([identity.upstream, identity.encoding], ['not asked', coding], 'a request going upstream alike: a hit, as sent')
      const gz = await get(path, 'gzip')
      t.same([gz.upstream, gz.encoding], [vary ? 'gzip' : 'not asked', coding], vary ? 'another variant: asked again' : 'no Vary: stored for every client')
    }
  }
})
