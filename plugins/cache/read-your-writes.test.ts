import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { eventually } from '../../test/stores/store-cases.ts'

// An unsafe request is answered before a long invalidation is over (a path with 80,000 stored
// queries takes seconds on Redis, deleted 200 at a time in random order): its URL's entry stored
// before it may be among the last deleted. Until the deletion is over, lookups of that URL miss,
// on every route on the store (here a read route beside the write route): a client reading right
// after its write never gets what it wrote over.
const { redis, raw } = await redisWithClient(t)

let version = 1
const up = await startUpstream((req, res) => {
  req.resume()
  if (req.method !== 'GET') { version++; res.writeHead(200, { 'content-length': 2 }).end('{}'); return }
  const body = `v${version}`
  res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': body.length }).end(body)
})
t.teardown(() => up.close())

const PREFIX = 'ryw:'
const gw = await startGateway(`
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  shared: { type: redis, url: "${redis.url}", keyPrefix: "${PREFIX}", commandTimeout: 2s }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: reads
    match: { path: /*, methods: [GET] }
    upstream: up
    plugins: { cache: { store: shared } }
  - name: writes
    match: { path: /*, methods: [POST] }
    upstream: up
    plugins: { cache: { store: shared } }
`)
t.teardown(() => gw.close())
t.ok(await storeUp(gw.adminUrl as string))

const send = async (method = 'GET') => {
  const res = await request(`${gw.url}/flood`, { method: method as 'GET', headers: { host: 'api.example.com' } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}
const TAG_SET = `${PREFIX}tag:{u:api.example.com/flood}`

t.test('after a POST is answered, no GET of its URL is served the entry from before it, while its invalidation runs', async t => {
  t.match((await send()).cacheStatus, /stored/)
  t.equal(await eventually(async () => (await send()).cacheStatus.startsWith('Portcullis; hit'), true, 5_000), true, 'stored')
  // As 80,000 stored queries leave it (GET /flood?_=1, ?_=2...): seconds to delete.
  for (let i = 0; i < 80_000; i += 5_000) await raw.sadd(TAG_SET, ...Array.from({ length: 5_000 }, (_, j) => `${PREFIX}c:reads:/flood?_=${i + j}#api.example.com|http|`))

  t.equal((await send('POST')).status, 200)
  const reads: Array<{ body: string, cacheStatus: string }> = []
  while (await raw.exists(`${TAG_SET}:purge`) === 1) {
    reads.push(await send())
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.ok(reads.length >= 5, `${reads.length} GETs while the invalidation ran`)
  t.same(reads.filter(r => r.body !== 'v2'), [], 'none got the entry from before the POST')
  t.same(reads.filter(r => !r.cacheStatus.startsWith('Portcullis; fwd=uri-miss')), [], 'each a miss')
  t.equal(await eventually(async () => (await send()).cacheStatus.startsWith('Portcullis; hit'), true, 5_000), true, 'cached again once it is over')
  t.equal((await send()).body, 'v2')
})
