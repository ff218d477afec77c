import t from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { eventually } from '../../test/stores/store-cases.ts'

// A key of the cache's that another writer sharing the prefix made a hash: Redis answers WRONGTYPE.
// That is the value's fault, not an outage: a miss that replaces it, not a bypass for good.
const { redis, raw } = await redisWithClient(t)

let n = 0
const up = await startUpstream((req, res) => {
  const body = `${req.url as string} #${++n}`
  const vary = req.url?.startsWith('/v') === true ? { vary: 'Accept-Language' } : undefined
  res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': Buffer.byteLength(body), ...vary }).end(body)
})
t.teardown(() => up.close())

const PREFIX = 'wt:'
const gw: TestGateway = await startGateway(sharedStoreConfig(redis.url, up.url, PREFIX))
t.teardown(() => gw.close())
t.ok(await storeUp(gw.adminUrl as string))

const get = async (path: string, headers: Record<string, string> = {}, method = 'GET') => {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { host: 'api.example.com', ...headers } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}
const corrupt = () => metricValue(gw.adminUrl as string, 'portcullis_cache_corrupt_entries_total{route="r"}')

/** The one key Redis holds matching `pattern` (after the prefix), once the gateway has written it. */
async function keyLike (pattern: string): Promise<string> {
  for (let i = 0; i < 250; i++) {
    const keys = await raw.keys(PREFIX + pattern)
    if (keys.length === 1) return keys[0] as string
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`no single key like ${pattern} within 5 s`)
}

/** Puts a hash where the cache keeps a string. */
async function makeHash (key: string): Promise<void> {
  await raw.del(key)
  await raw.hset(key, 'other', 'writer')
}

/** Asks until a hit (the entry is written once the exchange is over); its body. */
async function hitBody (path: string, headers: Record<string, string> = {}): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    const res = await get(path, headers)
    if (/^Portcullis; hit/.test(res.cacheStatus)) return res.body
  }
  return undefined
}

t.test('an entry key holding a hash is a miss: counted, replaced by the answer fetched, then a hit', async t => {
  await get('/w')
  const key = await keyLike('c:r:/w?#*')
  await makeHash(key)
  const counted = await corrupt()
  const before = n
  const miss = await get('/w')
  t.same([miss.status, miss.body, fresh(miss.cacheStatus, 600)], [200, `/w #${before + 1}`, 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=600'])
  t.equal(await corrupt(), counted + 1, 'counted as a value the cache cannot read')
  t.equal(await hitBody('/w'), `/w #${before + 1}`, 'stored in its place')
  t.equal(await raw.type(key), 'string')
  const { stores } = await (await request(`${gw.adminUrl as string}/stores`)).body.json() as { stores: Array<{ name: string, state: string }> }
  t.equal(stores.find(s => s.name === 'shared')?.state, 'up')
})

t.test('a Vary variant\'s key holding a hash is a miss too', async t => {
  const en = { 'accept-language': 'en' }
  await get('/v', en)
  const key = await keyLike('c:r:/v?#*|h:accept-language=en')
  await makeHash(key)
  const counted = await corrupt()
  const before = n
  const miss = await get('/v', en)
  t.same([miss.body, fresh(miss.cacheStatus, 600)], [`/v #${before + 1}`, 'Portcullis; fwd=vary-miss; fwd-status=200; stored; ttl=600'])
  t.equal(await corrupt(), counted + 1, 'counted')
  t.equal(await hitBody('/v', en), `/v #${before + 1}`, 'stored in its place')
})

t.test('an invalidation answered WRONGTYPE is not retried: it does not hold up the retries of those the store failed', async t => {
  await get('/i1')
  await get('/i2')
  t.ok(await hitBody('/i1'))
  t.ok(await hitBody('/i2'))
  // /i1's URL tag record made a string: its invalidations are answered WRONGTYPE, every time.
  const tag = await keyLike('tag:{u:api.example.com/i1}')
  await raw.del(tag)
  await raw.set(tag, 'junk')
  const failures = () => metricValue(gw.adminUrl as string, 'portcullis_cache_invalidation_failures_total{route="r"}')
  const failed = await failures()
  t.equal((await get('/i1', {}, 'DELETE')).status, 200)
  t.equal(await eventually(failures, failed + 1), failed + 1, 'the WRONGTYPE counted as a failed invalidation')
  // Scripts wait out the pause: /i2's invalidation times out (commandTimeout 2s), to be retried.
  await redis.cli('CLIENT', 'PAUSE', '4000', 'WRITE')
  t.equal((await get('/i2', {}, 'DELETE')).status, 200)
  // Counted once it times out: the DELETE was answered without waiting for that.
  t.equal(await eventually(failures, failed + 2, 5_000), failed + 2, 'the timeout counted')
  let status = ''
  for (let i = 0; i < 150 && !status.includes('fwd=uri-miss'); i++) {
    status = (await get('/i2')).cacheStatus
    if (!status.includes('fwd=uri-miss')) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.match(status, /fwd=uri-miss/, 'invalidated by a retry once the pause is over')
})
