import type { IncomingMessage, ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// How long the store keeps what the cache writes: never without expiry (a revalidation that leaves
// the entry no time), and a Vary marker as long as its longest-lived variant.
const { redis, raw } = await redisWithClient(t)

const send = (res: ServerResponse, status: number, headers: Record<string, string>, body = '') => {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body)
}
const conditional = (req: IncomingMessage) => req.headers['if-none-match'] !== undefined

/** Polls `check` every 20 ms until it holds, for at most `maxMs`; whether it held. */
async function polled (check: () => Promise<boolean>, maxMs = 5_000): Promise<boolean> {
  for (const start = performance.now(); !(await check());) {
    if (performance.now() - start >= maxMs) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return true
}

/**
 * The upstream, by path. Its 200s are stale on arrival (Age 1, max-age=1) with an ETag: stored to
 * be revalidated. /must: its 304 leaves no time (max-age=0, must-revalidate); /aged: its 304, and
 * its 200 to a HEAD, come with an Age far past their max-age.
 */
let requests = 0
const up = await startUpstream((req, res) => {
  requests++
  const path = (req.url ?? '').split('?')[0] as string
  if (path.startsWith('/vary')) {
    // Vary: each language its own lifetime, fr's short.
    const lang = String(req.headers['accept-language'])
    send(res, 200, { 'cache-control': lang === 'fr' ? 'max-age=1' : 'max-age=600', vary: 'Accept-Language' }, `lang=${lang}`)
    return
  }
  const validator = { etag: '"v1"' }
  if (req.method === 'HEAD') send(res, 200, { ...validator, 'cache-control': 'max-age=1', age: '99999999', 'content-length': '4' })
  else if (!conditional(req)) send(res, 200, { ...validator, 'cache-control': 'max-age=1', age: '1' }, 'body')
  else if (path.startsWith('/must')) send(res, 304, { ...validator, 'cache-control': 'max-age=0, must-revalidate' })
  else send(res, 304, { ...validator, 'cache-control': 'max-age=1', age: '99999999' })
})
t.teardown(() => up.close())

const config = (keyPrefix: string, cache: string) => sharedStoreConfig(redis.url, up.url, keyPrefix, `{ cache: ${cache} }`)

/** A gateway whose route caches in `store` (`STORE` in `cache`); the Redis store's keys under `keyPrefix`. */
async function gateway (t: Test, store: 'shared' | 'memory', cache: string, keyPrefix = `${store}:`): Promise<TestGateway> {
  const gw = await startGateway(config(keyPrefix, cache.replace('STORE', store)))
  t.teardown(() => gw.close())
  if (store === 'shared') t.ok(await storeUp(gw.adminUrl as string), 'the Redis store is up')
  return gw
}

const get = async (gw: TestGateway, path: string, method = 'GET', headers: Record<string, string> = {}) => {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { host: 'api.example.com', ...headers } })
  await res.body.text()
  return String(res.headers['cache-status'])
}

/** The keys under `prefix` (entries, markers, tag sets and records) with their PTTL. */
async function ttls (prefix: string): Promise<Record<string, number>> {
  const keys = await raw.keys(`${prefix}*`)
  return Object.fromEntries(await Promise.all(keys.map(async k => [k, await raw.pttl(k)] as const)))
}
const entryKey = (prefix: string, path: string) => `${prefix}c:r:${path}?#api.example.com|http|`

for (const store of ['shared', 'memory'] as const) {
  t.test(`${store}: a revalidation that leaves the entry no time to be kept does not store it`, async t => {
    const prefix = `${store}:`
    // The probe's config: nothing kept past the stale windows, a route window for background revalidations.
    const a = await gateway(t, store, '{ store: STORE, keepStale: 0, staleWhileRevalidate: 30s }')
    t.match(await get(a, '/must'), /fwd=uri-miss; fwd-status=200; stored/)
    const seen = requests
    // Stale within stale-while-revalidate: served at once, revalidated in the background, with a 304 of max-age=0, must-revalidate.
    t.match(await get(a, '/must'), /^Portcullis; hit/)
    t.ok(await until(() => requests > seen), 'revalidated')
    if (store === 'shared') {
      const key = entryKey(prefix, '/must')
      // Done once the entry is dropped (or, had it been written back, once its TTL is gone).
      t.ok(await polled(async () => await raw.exists(key) === 0 || await raw.pttl(key) === -1), 'the revalidation is over')
      t.same(Object.entries(await ttls(prefix)).filter(([, ttl]) => ttl === -1), [], 'no key without expiry')
    }
    // Nothing kept: the next request is a plain miss, not a revalidation of an entry kept for ever.
    t.ok(await polled(async () => (await get(a, '/must')).startsWith('Portcullis; fwd=uri-miss')), 'the entry is dropped')
  })

  t.test(`${store}: a 304, or a HEAD's 200, whose Age leaves the entry no time: served, not stored, the entry dropped`, async t => {
    const prefix = `${store}:`
    const a = await gateway(t, store, '{ store: STORE }')
    t.match(await get(a, '/aged'), /fwd=uri-miss; fwd-status=200; stored/)
    t.equal(await get(a, '/aged'), 'Portcullis; fwd=stale; fwd-status=304; detail=no-freshness', 'not "stored; ttl=-99999998"')
    t.match(await get(a, '/aged'), /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, 'dropped: a miss')
    t.equal(await get(a, '/aged', 'HEAD'), 'Portcullis; fwd=stale; fwd-status=200; detail=no-freshness', 'a HEAD\'s 200 likewise')
    t.match(await get(a, '/aged'), /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, 'dropped: a miss')
    if (store === 'shared') t.same(Object.entries(await ttls(prefix)).filter(([, ttl]) => ttl === -1), [], 'no key without expiry')
  })
}

t.test('a Vary marker lives as long as its longest-lived variant, whichever was stored last', async t => {
  const prefix = 'vary:'
  const [a, b] = await Promise.all([gateway(t, 'shared', '{ store: STORE }', prefix), gateway(t, 'shared', '{ store: STORE }', prefix)])
  const marker = entryKey(prefix, '/vary')
  const written = (key: string) => polled(async () => await raw.exists(key) === 1)
  t.match(await get(a, '/vary', 'GET', { 'accept-language': 'de' }), /fwd=uri-miss; fwd-status=200; stored; ttl=(599|600)$/)
  const de = `${marker}|h:accept-language=de`
  t.ok(await written(de), 'de stored')
  // The short-lived variant, through the other gateway, after it.
  t.match(await get(b, '/vary', 'GET', { 'accept-language': 'fr' }), /fwd=vary-miss; fwd-status=200; stored; ttl=[01]$/)
  const fr = `${marker}|h:accept-language=fr`
  t.ok(await written(fr), 'fr stored after it')
  const [markerTtl, deTtl, frTtl] = await Promise.all([raw.pttl(marker), raw.pttl(de), raw.pttl(fr)])
  t.ok(frTtl <= 1_000, `fr's variant: ${frTtl} ms`)
  t.ok(markerTtl >= deTtl - 5_000, `the marker (${markerTtl} ms) lives as long as de's variant (${deTtl} ms)`)
  t.match(await get(a, '/vary', 'GET', { 'accept-language': 'de' }), /^Portcullis; hit/)
})
