import t from 'tap'
import { request } from 'undici'
import { RedisProcess } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

// A worker's stores belong to its process, as in a single process (docs/stores.md#reloads): a reload keeps them.
t.test('workers: a reload keeps each worker\'s stores: rate-limit counters, GET /stores, store metrics, Redis connections', async t => {
  const redis = await RedisProcess.start()
  const raw = redis.client()
  const up = await startUpstream()
  t.teardown(async () => { await raw.quit(); await Promise.all([up.close(), redis.stop()]) })
  const routes = (extra = '') => `  - { name: limited, match: { path: /limited }, upstream: u, plugins: { rate-limit: { by: [ ip ], limits: [ { name: h, requests: 2, window: 1h } ] } } }
  - { name: shared, match: { path: /shared }, upstream: u, plugins: { rate-limit: { store: shared, by: [ ip ], limits: [ { name: s, requests: 1000, window: 1h } ] } } }
${extra}`
  const { url, admin, reload } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, routes(),
    { extra: `stores:\n  shared: { type: redis, url: "${redis.url}" }` })
  /** Ids of the clients connected to the server, except the test's own. */
  const clients = async (): Promise<string[]> => {
    const own = String(await raw.client('ID'))
    return [...String(await raw.client('LIST')).matchAll(/^id=(\d+) /gm)].map(m => m[1] as string).filter(id => id !== own).sort()
  }
  const stores = async () => (await (await request(`${admin}/stores`)).body.json() as { stores: Array<{ name: string }> }).stores.map(s => s.name).sort()
  const storeUp = async () => (await (await request(`${admin}/metrics`)).body.text()).match(/^portcullis_store_up\{store="[^"]+"\} 1$/gm)?.sort()

  // 2 an hour per worker (memory stores are per worker): new connections until both workers have let theirs through.
  let passed = 0
  for (let i = 0; i < 40 && passed < 4; i++) if ((await fresh(`${url}/limited`, 1))[0]?.startsWith('200 ') === true) passed++
  t.equal(passed, 4, 'each worker let 2 through')
  const refused = async () => (await fresh(`${url}/limited`, 6)).filter(r => r.startsWith('429 ')).length
  t.equal(await refused(), 6, 'then 429 on both workers')
  t.equal((await fresh(`${url}/shared`, 2)).filter(r => r.startsWith('200 ')).length, 2)
  const ids = await clients()
  t.equal(ids.length, 2, 'one Redis connection per worker')
  t.same(await stores(), ['memory', 'shared'])
  const up1 = await storeUp()
  t.equal(up1?.length, 2, 'portcullis_store_up for both stores')

  t.match(await reload(routes('  - { name: other, match: { path: /other }, upstream: u }')), { result: 'success' })
  t.equal(await refused(), 6, 'the counters survived the reload: still 429 on both workers')
  t.same(await stores(), ['memory', 'shared'], 'GET /stores still lists them')
  t.same(await storeUp(), up1, 'portcullis_store_up is still there')
  t.equal((await fresh(`${url}/shared`, 2)).filter(r => r.startsWith('200 ')).length, 2)
  t.same(await waitFor(async () => { const now = await clients(); return now.length === ids.length ? now : undefined }), ids,
    'CLIENT LIST: the same client ids, no new connections')
})
