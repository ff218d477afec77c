import t from 'tap'
import zlib from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'

// compress (880) sits above the cache (500): the cache stores the upstream's bytes once, and every
// client, hit or miss, gets the encoding it accepts from compress.
const BODY = JSON.stringify({ items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) })
const DECODE: Record<string, (b: Buffer) => Buffer> = { br: zlib.brotliDecompressSync, gzip: zlib.gunzipSync, identity: b => b }

t.test('compress and cache on one route: stored once as the upstream sent it, served in each client\'s encoding', async t => {
  let fetched = 0
  const up = await startUpstream((req, res) => {
    req.resume()
    fetched++
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', 'content-length': String(Buffer.byteLength(BODY)) }).end(BODY)
  })
  const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: items
    match: { path: /items }
    upstream: u
    plugins: { cache: {}, compress: {} }
`)
  t.teardown(async () => { await gw.close(); await up.close() })

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
  t.equal(fetched, 1, 'one upstream request: every later client was a hit')
})
