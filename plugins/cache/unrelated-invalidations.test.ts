import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// Invalidations that do not select a fetch in flight never keep it out of the store, however many
// come during it (any client's writes, on any route of the store); one that selects it still does.

const WRITES = 1_100

interface Reports { gw: TestGateway, gets: () => number, release: () => void }

/**
 * `reports` (GET /reports/*, its first answer held until release(), fresh 600 s, tagged `rep`) and
 * `graphql` (POST /graphql, 200 with the request's X-Content-Location as Content-Location), both
 * cached by the top-level plugin on the default memory store.
 */
async function reports (t: Test): Promise<Reports> {
  let gets = 0
  const held: Array<() => void> = []
  const up = await startUpstream((req, res) => {
    req.resume()
    if (req.method === 'POST') {
      const cl = req.headers['x-content-location']
      res.writeHead(200, { 'content-length': 2, ...(typeof cl === 'string' ? { 'content-location': cl } : {}) }).end('{}')
      return
    }
    const body = `report ${++gets}`
    const answer = () => { if (!res.destroyed) res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'rep', 'content-length': body.length }).end(body) }
    if (gets === 1) held.push(answer); else answer()
  })
  t.teardown(() => up.close())
  const release = () => { for (const answer of held.splice(0)) answer() }
  t.teardown(release)
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: reports
    match: { path: /reports/*, methods: [GET] }
    upstream: up
  - name: graphql
    match: { path: /graphql, methods: [POST] }
    upstream: up
plugins: { cache: {} }
`, { admin: true })
  t.teardown(() => gw.close())
  return { gw, gets: () => gets, release }
}

async function get (gw: TestGateway): Promise<{ body: string, cacheStatus: string }> {
  const res = await request(`${gw.url}/reports/q`)
  return { body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }
}

/** `n` POSTs to /graphql, 100 at a time, each answered 200 (so each invalidates /graphql). */
async function writes (t: Test, gw: TestGateway, n: number, headers: Record<string, string> = {}): Promise<void> {
  for (let sent = 0; sent < n; sent += 100) {
    const statuses = await Promise.all(Array.from({ length: Math.min(100, n - sent) }, async () => {
      const res = await request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"query":"{ a }"}' })
      await res.body.dump()
      return res.statusCode
    }))
    if (statuses.some(s => s !== 200)) t.fail(`a POST answered ${statuses.find(s => s !== 200)}`)
  }
}

async function purge (gw: TestGateway, body: unknown): Promise<number> {
  const res = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.body.dump()
  return res.statusCode
}

t.test(`${WRITES} invalidations of another route's URL during a slow fetch: its answer is stored`, async t => {
  const r = await reports(t)
  const slow = get(r.gw)
  t.ok(await until(() => r.gets() === 1), 'the GET is upstream')
  await writes(t, r.gw, WRITES)
  r.release()
  const answer = await slow
  t.equal(answer.body, 'report 1')
  // Its ttl counts the time it took from the request (RFC 9111 4.2.3).
  t.match(answer.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=\d+$/, 'not said to be purged')
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
  const next = await get(r.gw)
  t.same([next.body, r.gets()], ['report 1', 1], 'the next GET is answered from the store')
  t.match(next.cacheStatus, /^Portcullis; hit/)
})

t.test(`an invalidation selecting the fetch among ${WRITES} that do not: its answer is not stored`, async t => {
  const r = await reports(t)
  const slow = get(r.gw)
  t.ok(await until(() => r.gets() === 1), 'the GET is upstream')
  await writes(t, r.gw, WRITES / 2)
  // Another route's write whose answer names the URL being fetched (RFC 9111 4.4).
  await writes(t, r.gw, 1, { 'x-content-location': '/reports/q' })
  await writes(t, r.gw, WRITES / 2)
  r.release()
  t.same(await slow, { body: 'report 1', cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged' })
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
  const next = await get(r.gw)
  t.same([next.body, r.gets()], ['report 2', 2], 'the next GET goes upstream')
  t.match(next.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/)
})

t.test(`a tag purge selecting the fetch before its headers are in, among ${WRITES} invalidations: its answer is not stored`, async t => {
  const r = await reports(t)
  const slow = get(r.gw)
  t.ok(await until(() => r.gets() === 1), 'the GET is upstream')
  t.equal(await purge(r.gw, { tag: 'other' }), 200)
  t.equal(await purge(r.gw, { tag: 'rep' }), 200)
  await writes(t, r.gw, WRITES)
  r.release()
  t.same(await slow, { body: 'report 1', cacheStatus: 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged' }, 'its answer carries the purged tag')
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 0))
  const next = await get(r.gw)
  t.same([next.body, r.gets()], ['report 2', 2], 'the next GET goes upstream')
})
