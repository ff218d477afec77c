import type { ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { rig, type Rig } from '../../test/helpers/cache-rig.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// A purge (or an invalidation by an unsafe request) that answers while a fetch is in flight: what
// that fetch brings (built before it) is neither given to requests that come after it nor stored.

/**
 * An upstream whose content is `content.v` when a request arrives; the first request's answer is
 * held until `release()`, the others answer at once. Fresh for 5 minutes, tagged `t-p`; with the
 * request's X-Location as its Location.
 */
async function heldFirst (t: Test, config = '{ collapseTimeout: 14s }'): Promise<Rig & { content: { v: string }, release: () => void }> {
  const content = { v: 'v1' }
  const held: Array<() => void> = []
  const send = (res: ServerResponse, body: string, headers: Record<string, string> = {}) => {
    if (!res.destroyed) res.writeHead(200, { 'cache-control': 'max-age=300', 'surrogate-key': 't-p', 'content-length': body.length, ...headers }).end(body)
  }
  const r = await rig(t, (req, res, n) => {
    const body = content.v
    if (req.headers['if-none-match'] === `"${body}"`) { res.writeHead(304, { etag: `"${body}"`, 'cache-control': 'max-age=300' }).end(); return }
    const location = req.headers['x-location']
    const answer = () => send(res, body, req.url === '/stale' ? { etag: `"${body}"`, age: '301' } : typeof location === 'string' ? { location } : {})
    if (n === 1) held.push(answer); else answer()
  }, config)
  const release = () => { for (const answer of held.splice(0)) answer() }
  t.teardown(release)
  return Object.assign(r, { content, release })
}

async function purge (r: Rig, body: unknown): Promise<{ status: number, body: unknown }> {
  const res = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.statusCode, body: await res.body.json() }
}

const selectors = (r: Rig): Record<string, unknown> => ({
  url: { url: `${r.gw.url}/p` },
  prefix: { prefix: '/p' },
  tag: { tag: 't-p' },
  all: { all: true }
})

for (const kind of ['url', 'prefix', 'tag', 'all']) {
  t.test(`a purge by ${kind} during a fetch: requests after it fetch anew, and the older answer is not stored`, async t => {
    const r = await heldFirst(t)
    const leader = r.get('/p')
    t.ok(await until(() => r.seen.length === 1), 'the leader is upstream')
    const before = r.get('/p')
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 2), 'a request waits on its fetch')
    r.content.v = 'v2'
    t.same(await purge(r, selectors(r)[kind]), { status: 200, body: { purged: 0 } })
    const after = await r.get('/p')
    t.equal(after.body, 'v2', 'a request after the purge is not given the fetch begun before it')
    t.match(after.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
    r.release()
    t.same([(await leader).body, (await before).body], ['v1', 'v1'], 'the requests before the purge get its answer')
    t.equal((await leader).cacheStatus, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged', 'the leader is not told its answer was stored')
    t.match((await before).cacheStatus, /collapsed/)
    // The leader's exchange is over: what it would store is decided.
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
    const next = await r.get('/p')
    t.same([next.body, r.seen.length], ['v2', 2], 'the answer fetched before the purge was not stored over the newer one')
    t.match(next.cacheStatus, /^Portcullis; hit/)
  })
}

for (const [name, path, invalidates] of [['its URL', '/p', '/p'], ['its Location', '/orders', '/p']] as const) {
  t.test(`an unsafe request invalidating ${name} during a fetch: requests after it fetch anew, and the older answer is not stored`, async t => {
    const r = await heldFirst(t)
    const leader = r.get('/p')
    t.ok(await until(() => r.seen.length === 1), 'the leader is upstream')
    const before = r.get('/p')
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 2), 'a request waits on its fetch')
    r.content.v = 'v2'
    const post = await r.get(path, { 'x-location': invalidates }, 'POST')
    t.same([post.status, post.cacheStatus], [200, 'Portcullis; fwd=method'])
    const after = await r.get('/p')
    t.equal(after.body, 'v2', 'a request after the invalidation is not given the fetch begun before it')
    t.match(after.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
    r.release()
    t.same([(await leader).body, (await before).body], ['v1', 'v1'], 'the requests before it get its answer')
    t.equal((await leader).cacheStatus, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged')
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
    const next = await r.get('/p')
    t.same([next.body, r.seen.length], ['v2', 3], 'the answer fetched before the invalidation was not stored over the newer one')
    t.match(next.cacheStatus, /^Portcullis; hit/)
  })
}

t.test('a URL purge of another key leaves the fetch joinable, and its answer is stored', async t => {
  const r = await heldFirst(t)
  const leader = r.get('/p')
  t.ok(await until(() => r.seen.length === 1))
  t.same(await purge(r, { url: `${r.gw.url}/other` }), { status: 200, body: { purged: 0 } })
  const after = r.get('/p')
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 2))
  r.release()
  t.same([(await leader).body, (await after).body], ['v1', 'v1'])
  t.match((await leader).cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
  t.match((await after).cacheStatus, /collapsed/)
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
  t.match((await r.get('/p')).cacheStatus, /^Portcullis; hit/)
  t.equal(r.seen.length, 1)
})

t.test('a tag purge stores an answer in flight that does not carry the tag', async t => {
  const r = await heldFirst(t)
  const leader = r.get('/p')
  t.ok(await until(() => r.seen.length === 1))
  t.same(await purge(r, { tag: 'another' }), { status: 200, body: { purged: 0 } })
  r.release()
  t.equal((await leader).body, 'v1')
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
  t.match((await r.get('/p')).cacheStatus, /^Portcullis; hit/)
  t.equal(r.seen.length, 1)
})

// A GET's revalidation gets a 304; a HEAD's, a 200 with the stored validators (RFC 9111 4.3.5).
for (const [method, fwdStatus] of [['GET', 304], ['HEAD', 200]] as const) {
  t.test(`a ${method} revalidation under way when a purge comes does not put the purged entry back`, async t => {
    const r = await heldFirst(t, '{ collapseTimeout: 14s, keepStale: 1h }')
    const fetching = r.get('/stale')
    t.ok(await until(() => r.seen.length === 1))
    r.release()
    const first = await fetching
    t.match(first.cacheStatus, /stored/, 'stored stale (Age past max-age), with a validator')
    // The revalidation's answer is held until the purge has answered.
    let answer!: () => void
    const held = new Promise<void>(resolve => { answer = resolve })
    r.up.server.removeAllListeners('request')
    r.up.server.on('request', (req, res) => {
      r.seen.push({ method: req.method as string, url: req.url as string, headers: req.headers })
      req.resume()
      void held.then(() => req.headers['if-none-match'] === undefined ? res.writeHead(200, { 'content-length': 2 }).end('v2')
        : req.method === 'HEAD' ? res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=300', 'content-length': 2 }).end()
          : res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=300' }).end())
    })
    const revalidating = r.get('/stale', {}, method)
    t.ok(await until(() => r.seen.length === 2), 'the stale entry is being revalidated')
    t.same(await purge(r, { url: `${r.gw.url}/stale` }), { status: 200, body: { purged: 1 } })
    answer()
    t.equal((await revalidating).cacheStatus, `Portcullis; fwd=stale; fwd-status=${fwdStatus}; detail=purged`, 'not said to be stored')
    t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
    const next = await r.get('/stale')
    t.match(next.cacheStatus, /^Portcullis; fwd=uri-miss/, 'purged: not freshened back into the store')
  })
}

t.test('an invalidation by a write route on the same store: the read route\'s fetch in flight is neither joined nor stored', async t => {
  const content = { v: 'v1' }
  const held: Array<() => void> = []
  let gets = 0
  const up = await startUpstream((req, res) => {
    req.resume()
    if (req.method === 'POST') { content.v = 'v2'; res.writeHead(204).end(); return }
    const body = content.v
    const answer = () => { if (!res.destroyed) res.writeHead(200, { 'cache-control': 'max-age=300', 'content-length': body.length }).end(body) }
    if (++gets === 1) held.push(answer); else answer()
  })
  t.teardown(() => up.close())
  const release = () => { for (const answer of held.splice(0)) answer() }
  t.teardown(release)
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: reads
    match: { path: /items, methods: [GET] }
    upstream: up
    plugins:
      cache: { collapseTimeout: 14s }
  - name: writes
    match: { path: /items, methods: [POST] }
    upstream: up
    plugins:
      cache: {}
`)
  t.teardown(() => gw.close())
  const get = async (method = 'GET') => {
    const res = await request(`${gw.url}/items`, { method: method as 'GET' })
    return { status: res.statusCode, body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }
  }
  const leader = get()
  t.ok(await until(() => gets === 1), 'the read route\'s leader is upstream')
  const post = await get('POST')
  t.same([post.status, post.cacheStatus], [204, 'Portcullis; fwd=method'], 'the write route invalidated /items')
  const after = get()
  t.ok(await until(() => gets === 2), 'a read after the invalidation goes upstream, not waiting on the fetch begun before it')
  t.same([(await after).body, (await after).cacheStatus.replace(/; ttl=\d+$/, '')], ['v2', 'Portcullis; fwd=uri-miss; fwd-status=200; stored'])
  release()
  t.same([(await leader).body, (await leader).cacheStatus], ['v1', 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged'])
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0))
  const next = await get()
  t.same([next.body, gets], ['v2', 2], 'the answer fetched before the invalidation was not stored over the newer one')
  t.match(next.cacheStatus, /^Portcullis; hit/)
})
