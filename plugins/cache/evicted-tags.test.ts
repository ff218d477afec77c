import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { until } from '../../test/helpers/wait.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { numberingUpstream, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'

// A cache Redis with an evicting maxmemory-policy (allkeys-lru...) evicts the rarely read tag records
// while the entries, read on every hit, stay: invalidations and tag purges must still reach them.

const { redis, raw } = await redisWithClient(t)
const up = await numberingUpstream()
t.teardown(() => up.close())

async function gateway (t: Test, prefix: string, plugins?: string): Promise<TestGateway> {
  const gw = await startGateway(sharedStoreConfig(redis.url, up.url, prefix, plugins))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string), 'its Redis store is up')
  return gw
}

const send = async (gw: TestGateway, path: string, method = 'GET') => {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { host: 'api.example.com' } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}

const purge = async (gw: TestGateway, body: object) => {
  const res = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.statusCode, body: await res.body.json() }
}

t.test('tag records evicted, their entries kept: an invalidation through another gateway and a tag purge still delete them', async t => {
  const PREFIX = 'ev:'
  const [a, b] = [await gateway(t, PREFIX), await gateway(t, PREFIX)]
  const paths = [1, 2, 3, 4, 5].map(i => `/e/${i}`)
  const entry = (path: string) => `${PREFIX}c:r:${path}?#api.example.com|http|`
  for (const p of paths) t.match((await send(a, p)).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  // Written once each exchange has ended, a moment after the client has its answer.
  let stored = 0
  for (let i = 0; i < 250 && stored < paths.length; i++) {
    stored = await raw.exists(...paths.map(entry))
    if (stored < paths.length) await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.equal(stored, paths.length, 'every entry is stored')
  for (const p of paths) t.match((await send(b, p)).cacheStatus, /^Portcullis; hit/, `${p}: a hit through the other gateway`)

  // What LRU eviction does: the tag records go (never read by hits), the entries and tag sets stay.
  t.equal(await raw.del(...paths.map(p => `${PREFIX}tag:{}${entry(p)}`)), paths.length, 'the tag records are gone')

  for (const p of paths.slice(0, 3)) t.equal((await send(b, p, 'POST')).status, 200, `POST ${p} through the other gateway`)
  t.same(await purge(b, { tag: 'shared' }), { status: 200, body: { purged: 2 } }, 'the tag purge deletes the other two')
  t.equal(await raw.exists(...paths.map(entry)), 0, 'no entry is left')
  for (const p of paths) t.match((await send(a, p)).cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, `${p}: fetched anew`)
  t.equal(await metricValue(b.adminUrl as string, 'portcullis_cache_invalidation_failures_total{route="r"}'), 0, 'no invalidation failed')
})

t.test('a Redis that evicts when full: one warning per store when a connection reads that policy, not per route nor reconnect', async t => {
  await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
  t.teardown(() => redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction'))
  t.teardown(() => redis.cli('CONFIG', 'SET', 'maxmemory', '0'))
  // Two cached routes on the store.
  const gw = await gateway(t, 'warn:', `{ cache: { store: shared } }
  - name: r2
    match: { path: /two/* }
    upstream: up
    plugins: { cache: { store: shared } }`)
  const warnings = () => gw.logs.filter(l => l.level === 40 && String(l.msg).includes('evicts keys when full'))
  const ups = () => gw.logs.filter(l => l.msg === 'store is up').length
  /** Drops the gateway's connections: the store reconnects, and reads the policy again. */
  const reconnect = async () => {
    const before = ups()
    await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
    t.ok(await until(() => ups() > before), 'the store reconnected')
  }
  // An evicting policy without maxmemory (no limit) evicts nothing.
  await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lru')
  await reconnect()
  await redis.cli('CONFIG', 'SET', 'maxmemory', '1gb')
  await reconnect()
  t.ok(await until(() => warnings().length > 0), 'warned')
  t.match(warnings()[0], {
    store: 'shared',
    policy: 'allkeys-lru',
    msg: 'cache: store "shared"\'s Redis evicts keys when full (maxmemory-policy allkeys-lru): invalidations by unsafe requests and purges by tag are then best-effort (an evicted tag set leaves its entries served until they expire); give the cache a Redis with maxmemory-policy noeviction (volatile-* evicts the cache\'s keys too: they all expire)'
  })
  await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru')
  await reconnect()
  t.ok(await until(() => warnings().length > 1), 'warned again for another evicting policy')
  t.match(warnings()[1], { policy: 'volatile-lru' })
  await reconnect()
  await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lfu')
  await reconnect()
  t.ok(await until(() => warnings().length > 2), 'and for the next one')
  t.same(warnings().map(w => w.policy), ['allkeys-lru', 'volatile-lru', 'allkeys-lfu'], 'once per policy read, whatever the routes and reconnects')
})
