import t, { type Test } from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { entryStored, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// How long an entry may be kept, whatever the config or the upstream says: at most 2^31 s (the
// largest delta-seconds, RFC 9111 1.2.2), never without expiry. A keepStale of 10^16 ms, or an
// upstream's Expires in the year 275760 (ISO, which Date.parse took), had Redis keep the entry,
// its URL tag set and expiry index with no TTL (PTTL -1), or for 273,000 years.
const MAX_MS = 2 ** 31 * 1000

t.test('config: a lifetime longer than 2^31 s is an error at its line; 2^31 s is accepted', async t => {
  const message = 'must be a duration of at most 2147483648s (68 years): milliseconds as a number, or a string such as 5s, 2m, 1h, 30d'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      cache: { keepStale: 10000000000000000, defaultTtl: 200000000d, staleIfError: 2147483648001 }\n`), [
    `gw.yaml:10:27 routes[0].plugins.cache.keepStale: ${message}`,
    `gw.yaml:10:58 routes[0].plugins.cache.defaultTtl: ${message}`,
    `gw.yaml:10:84 routes[0].plugins.cache.staleIfError: ${message}`
  ])
  const accepted = await parseConfig(`${ONE_ROUTE_PLUGINS}      cache: { keepStale: 2147483648s, staleWhileRevalidate: 2147483648000, heuristicMax: 24855d }\n`, 'gw.yaml')
  t.match(accepted.config.routes[0]?.plugins, { cache: { keepStale: '2147483648s' } })
})

const { redis, raw } = await redisWithClient(t)

/** The upstream's headers by path (a Date from the probe's clock where none is given). */
const HEADERS: Record<string, Record<string, string>> = {
  // The longest of everything: freshness, stale windows, and (the route's) keepStale.
  '/longest': { 'cache-control': 'max-age=2147483648, stale-while-revalidate=2147483648', etag: '"a"' },
  '/iso-expires': { expires: '+275760-09-13T00:00:00.000Z' },
  '/iso-expires-etag': { expires: '+275760-09-13T00:00:00.000Z', etag: '"b"' },
  '/year-9999': { expires: 'Fri, 31 Dec 9999 23:59:59 GMT' },
  // An hour old by Date.parse: not an HTTP-date, so no age at all.
  '/iso-date': { 'cache-control': 'max-age=600', date: new Date(Date.now() - 3_600_000).toISOString() }
}
const up = await startUpstream((req, res) => {
  const headers = HEADERS[(req.url ?? '').split('?')[0] as string] ?? {}
  res.writeHead(200, { 'content-length': '2', ...headers }).end('ok')
})
t.teardown(() => up.close())

async function gateway (t: Test, keyPrefix: string, cache: string): Promise<TestGateway> {
  const gw = await startGateway(sharedStoreConfig(redis.url, up.url, keyPrefix, `{ cache: { store: shared, ${cache} } }`))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string), 'the Redis store is up')
  return gw
}

const cacheStatus = async (gw: TestGateway, path: string) => {
  const res = await request(`${gw.url}${path}`, { headers: { host: 'api.example.com' } })
  await res.body.text()
  return String(res.headers['cache-status'])
}

/** The PTTL of every key under `prefix`: entries, tag records, tag sets, expiry indexes. */
async function pttls (prefix: string): Promise<number[]> {
  const keys = await raw.keys(`${prefix}*`)
  t.ok(keys.length > 0, `keys under ${prefix}`)
  return Promise.all(keys.map(k => raw.pttl(k)))
}
const capped = (ttls: number[]) => ttls.every(ttl => ttl > MAX_MS - 60_000 && ttl <= MAX_MS)

t.test('the longest config and upstream lifetimes together: kept 2^31 s, not their sum', async t => {
  const gw = await gateway(t, 'long:', 'keepStale: 2147483648s, staleIfError: 24855d')
  t.match(fresh(await cacheStatus(gw, '/longest'), 2 ** 31), /stored; ttl=2147483648$/)
  await entryStored(redis, 'long:')
  const ttls = await pttls('long:')
  t.ok(capped(ttls), `every key expires in 2^31 s: ${ttls.join(', ')}`)
})

t.test('Expires: not an HTTP-date is already expired (RFC 9111 5.3); a far one counts as 2^31 s', async t => {
  const gw = await gateway(t, 'exp:', 'keepStale: 1h')
  t.equal(await cacheStatus(gw, '/iso-expires'), 'Portcullis; fwd=uri-miss; fwd-status=200; detail=no-freshness', 'stale on arrival, nothing to revalidate: not stored')
  t.match(await cacheStatus(gw, '/iso-expires-etag'), /fwd=uri-miss; fwd-status=200; stored; ttl=-?[01]$/, 'stale on arrival (less the time it took to come), kept to be revalidated')
  await entryStored(redis, 'exp:')
  const kept = await pttls('exp:')
  t.ok(kept.every(ttl => ttl > 0 && ttl <= 3_600_000), `kept for keepStale only: ${kept.join(', ')}`)
  t.match(await cacheStatus(gw, '/iso-expires-etag'), /^Portcullis; fwd=stale/, 'revalidated before use')

  await raw.flushdb()
  t.match(fresh(await cacheStatus(gw, '/year-9999'), 2 ** 31), /fwd=uri-miss; fwd-status=200; stored; ttl=2147483648$/)
  await entryStored(redis, 'exp:')
  const ttls = await pttls('exp:')
  t.ok(capped(ttls), `Expires in the year 9999: every key expires in 2^31 s: ${ttls.join(', ')}`)
})

t.test('Date: not an HTTP-date is no Date (its age not read from it)', async t => {
  const gw = await gateway(t, 'date:', 'keepStale: 0')
  t.match(fresh(await cacheStatus(gw, '/iso-date'), 600), /fwd=uri-miss; fwd-status=200; stored; ttl=600$/)
  t.match(await cacheStatus(gw, '/iso-date'), /^Portcullis; hit/)
})
