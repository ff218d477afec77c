import t from 'tap'
import { request } from 'undici'
import { rig } from '../../test/helpers/cache-rig.ts'

// The key sorts the query by name, keeping the order of one name's values. Names are sorted as
// upstreams read them, decoded: `%61` and `a` are one name to a first-wins parser (Go's
// Query().Get, URLSearchParams.get), so `?%61=1&a=2` and `?a=2&%61=1` are two answers. A query
// with a `;` keeps its order (Rack 2 splits there too); one of more than 256 parameters is not cached.

t.test('parameters whose names decode alike keep their order in the key', async t => {
  // The upstream reads its parameters as URLSearchParams does: decoded, the first of a name wins.
  const r = await rig(t, (req, res, n) => {
    const q = new URL(req.url as string, 'http://up').searchParams
    const body = `a=${String(q.get('a'))} a b=${String(q.get('a b'))} #${n}`
    res.writeHead(200, { 'cache-control': 'public, max-age=60', 'content-length': Buffer.byteLength(body) }).end(body)
  })
  const pairs: Array<[string, string, string]> = [['/d?%61=1&a=2', '/d?a=2&%61=1', 'a=2'], ['/s?a+b=1&a%20b=2', '/s?a%20b=2&a+b=1', 'a b=2']]
  for (const [first, second, reads] of pairs) {
    t.match((await r.get(first)).cacheStatus, /stored/, first)
    const other = await r.get(second)
    t.match(other.body, reads, `${second}: the upstream's own answer`)
    t.match(other.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, `${second}: its own entry`)
    t.match((await r.get(first)).cacheStatus, /^Portcullis; hit/, `${first}: still its entry`)
  }
  // Other names in another order: one entry, encoded or not.
  await r.get('/o?a=1&b=2')
  t.match((await r.get('/o?b=2&a=1')).cacheStatus, /^Portcullis; hit/)
  await r.get('/e?%7A=1&b=2')
  t.match((await r.get('/e?b=2&%7A=1')).cacheStatus, /^Portcullis; hit/)
  const purged = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `${r.gw.url}/e?b=2&%7A=1` })
  })
  t.same(await purged.body.json(), { purged: 1 }, 'a purge of the URL in either order finds it')
})

t.test('a query of more than 256 parameters skips the cache (its key would cost milliseconds a request)', async t => {
  const r = await rig(t, (_req, res, n) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=60' }).end(`#${n}`)
  })
  const query = (n: number): string => Array.from({ length: n }, (_, i) => `p${i}=1`).join('&')
  await r.get(`/m?${query(256)}`)
  t.match((await r.get(`/m?${query(256)}`)).cacheStatus, /^Portcullis; hit/, '256: cached')
  t.match((await r.get(`/m?${query(257)}`)).cacheStatus, /^Portcullis; fwd=bypass; detail=ambiguous-query/, '257: skips it')
  t.match((await r.get(`/m?${query(257)}`)).cacheStatus, /fwd=bypass/, 'never stored')
  t.match((await r.get('/m')).cacheStatus, /stored/)
  const purge = async (url: string) => {
    const res = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url }) })
    return { status: res.statusCode, body: await res.body.json() }
  }
  t.same(await purge(`${r.gw.url}/m?${query(257)}`), {
    status: 400,
    body: { error: 'bad_purge', message: '"url" has more than 256 query parameters: requests with that many skip the cache, so nothing is cached under it; purge {"prefix": "/m?"} for every query of the path' }
  }, 'a purge of such a URL names no key')
  t.match((await r.get('/m')).cacheStatus, /^Portcullis; hit/, 'the query-less entry is still there')
  t.same(await purge(`${r.gw.url}/m?${query(256)}`), { status: 200, body: { purged: 1 } }, '256: purged')
})

t.test('a query with a `;` in a parameter keeps its order: the upstream may split there, the last of a name winning', async t => {
  // As Rack 2 reads a query: split at `&` and `;`, the last value of a name wins.
  const r = await rig(t, (req, res, n) => {
    const b = (req.url as string).split('?')[1]?.split(/[&;]/).filter(p => p.startsWith('b=')).pop()
    const body = `${String(b)} #${n}`
    res.writeHead(200, { 'cache-control': 'public, max-age=60', 'content-length': Buffer.byteLength(body) }).end(body)
  })
  t.match((await r.get('/s?b=2&a=1;b=3')).body, /^b=3 /)
  const other = await r.get('/s?a=1;b=3&b=2')
  t.same([other.body, other.cacheStatus.replace(/; ttl=\d+$/, '')], ['b=2 #2', 'Portcullis; fwd=uri-miss; fwd-status=200; stored'], 'its own entry, the upstream\'s own answer')
  t.match((await r.get('/s?b=2&a=1;b=3')).cacheStatus, /^Portcullis; hit/, 'the first still its entry')
  await r.get('/o?b=2&a=1')
  t.match((await r.get('/o?a=1&b=2')).cacheStatus, /^Portcullis; hit/, 'without a `;`, sorted as before')
  const purged = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `${r.gw.url}/s?a=1;b=3&b=2` })
  })
  t.same(await purged.body.json(), { purged: 1 }, 'a purge of the URL finds its entry, and only it')
  t.match((await r.get('/s?b=2&a=1;b=3')).cacheStatus, /^Portcullis; hit/)
})
