import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { headerValues, rawRequest } from '../../test/helpers/raw-http.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// Requests are keyed on their path and query as sent (the path normalized): `/a{b}` and `?x='y'`
// keep those bytes. A purge's URL, and a Location, parsed as WHATWG URLs are percent-encoded
// (`/a%7Bb%7D`, `?x=%27y%27`): taken so alone, they named keys no request had, and missed.
let n = 0
const up = await startUpstream((req, res) => {
  req.resume()
  if (req.method === 'POST') { res.writeHead(201, { location: '/x/{id}', 'content-length': 2 }).end('{}'); return }
  const body = `${req.url as string} #${++n}`
  res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': Buffer.byteLength(body) }).end(body)
})
t.teardown(() => up.close())

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
plugins: { cache: {} }
`, { admin: true })
t.teardown(() => gw.close())

/** A request with its target as given, on a socket of its own (undici would percent-encode it first). */
const get = async (target: string, method = 'GET') => {
  const res = await rawRequest(Number(new URL(gw.url).port), [`${method} ${target} HTTP/1.1`, 'Host: h.example', 'Content-Length: 0', 'Connection: close'])
  return { status: res.status, cacheStatus: headerValues(res, 'cache-status').join(', '), body: res.body }
}
const purge = async (url: string) => {
  const res = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url }) })
  return await res.body.json() as { purged: number }
}
const stored = async (t: Test, path: string) => {
  t.match((await get(path)).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/, `${path} stored`)
  t.match((await get(path)).cacheStatus, /^Portcullis; hit/, `${path} a hit`)
}

for (const path of ['/a{b}', "/q?x='y'", '/q?x="y"', '/q?x=<y>']) {
  t.test(`purge {"url": "http://h.example${path}"} drops what ${path} stored`, async t => {
    await stored(t, path)
    t.same(await purge(`http://h.example${path}`), { purged: 1 })
    t.match((await get(path)).cacheStatus, /^Portcullis; fwd=uri-miss/, 'the next request goes upstream')
  })
}

t.test('a purge drops both spellings: as sent, and as URL encodes it', async t => {
  await stored(t, '/c{d}')
  await stored(t, '/c%7Bd%7D')
  t.same(await purge('http://h.example/c{d}'), { purged: 2 })
  t.match((await get('/c{d}')).cacheStatus, /fwd=uri-miss/)
  t.match((await get('/c%7Bd%7D')).cacheStatus, /fwd=uri-miss/)
})

t.test('a Location naming /x/{id} invalidates what /x/{id} stored', async t => {
  await stored(t, '/x/{id}')
  t.equal((await get('/x', 'POST')).status, 201)
  t.match((await get('/x/{id}')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'invalidated')
})
