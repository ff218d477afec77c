import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'

// Gateways on one Redis with other `key` settings (a rolling deploy of a config change, or a
// restart: the first config of a process drops nothing): an entry stored under one's settings is
// a miss under the other's, whose key may name other requests.

const { redis, raw } = await redisWithClient(t)

let n = 0
const up = await startUpstream((req, res) => {
  const body = `${req.url as string} #${++n}`
  const vary = req.url?.startsWith('/v/') === true ? { vary: 'accept-language' } : {}
  res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body), ...vary }).end(body)
})
t.teardown(() => up.close())

const PREFIX = 'fp:'
const ID = '{ cache: { store: shared, key: { query: { include: [id] } } } }'
const ID_LANG = '{ cache: { store: shared, key: { query: { include: [lang, id] } } } }'

async function gateway (t: Test, plugins: string): Promise<TestGateway> {
  const gw = await startGateway(sharedStoreConfig(redis.url, up.url, PREFIX, plugins))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string), 'its Redis store is up')
  return gw
}

const get = async (gw: TestGateway, path: string) => {
  const res = await request(`${gw.url}${path}`, { headers: { host: 'api.example.com', 'accept-language': 'fr' } })
  return { cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}

/** Once the entry (or Vary variant) written after `written` answers is in Redis: written when the exchange ends. */
async function stored (key: string, written: number): Promise<boolean> {
  for (let i = 0; i < 250; i++) {
    const value = await raw.getBuffer(PREFIX + key)
    if (value?.includes(`#${written}`) === true) return true
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return false
}

t.test('an entry stored under other key settings is a miss, and the answer fetched takes its place', async t => {
  const [a, b] = [await gateway(t, ID), await gateway(t, ID_LANG)]
  const first = await get(a, '/q/2?id=1&lang=fr')
  t.match(first.cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  // Keyed by `a` without lang: the key `b` gives /q/2?id=1.
  t.ok(await stored('c:r:/q/2?id=1#api.example.com|http|', n), 'stored by a')
  const fromB = await get(b, '/q/2?id=1')
  t.match(fromB.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, 'a miss under the other settings')
  t.equal(fromB.body, `/q/2?id=1 #${n}`, 'its own answer, not the one stored for lang=fr')
  t.ok(await stored('c:r:/q/2?id=1#api.example.com|http|', n), 'stored in its place')
  t.match((await get(b, '/q/2?id=1')).cacheStatus, /^Portcullis; hit/, 'then a hit')
  t.match((await get(a, '/q/2?id=1&lang=fr')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'and a miss for the first settings')
  t.ok(await stored('c:r:/q/2?id=1#api.example.com|http|', n), 'stored by a again')

  // A restarted gateway with the same settings finds its entries: the fingerprint is of the settings, not the process.
  const again = await gateway(t, '{ cache: { store: shared, key: { query: { include: [id, id] } } } }')
  const hit = await get(again, '/q/2?id=1&lang=de')
  t.match(hit.cacheStatus, /^Portcullis; hit/, 'the same settings (written otherwise): a hit')
  t.equal(hit.body, `/q/2?id=1&lang=fr #${n}`)
})

t.test('a Vary variant stored under other key settings is a miss too', async t => {
  const [a, b] = [await gateway(t, ID), await gateway(t, ID_LANG)]
  t.match((await get(a, '/v/1?id=1&lang=fr')).cacheStatus, /fwd=uri-miss; fwd-status=200; stored/)
  t.ok(await stored('c:r:/v/1?id=1#api.example.com|http||h:accept-language=fr', n), 'the variant is stored')
  const fromB = await get(b, '/v/1?id=1')
  t.match(fromB.cacheStatus, /^Portcullis; fwd=vary-miss; fwd-status=200; stored/, 'a miss under the other settings')
  t.equal(fromB.body, `/v/1?id=1 #${n}`)
})
