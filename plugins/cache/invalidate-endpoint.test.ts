import t from 'tap'
import { request } from 'undici'
import { rig } from '../../test/helpers/cache-rig.ts'
import { until } from '../../test/helpers/wait.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { eventually } from '../../test/stores/store-cases.ts'

// POST /plugins/cache/invalidate: how a worker passes a write's invalidation on to the others.
// It keeps this worker's fetches of the URLs begun before from being stored, and deletes the URL
// tags from its store: a memory store is each worker's own, and on Redis, which the writing worker
// deleted from already, a fetch here may have stored the old answer in between.

const tagOf = (r: { gw: { url: string } }, path: string) => `u:${new URL(r.gw.url).host}${path}`

async function invalidator (r: { gw: { adminUrl?: string } }) {
  return async (body: unknown) => {
    const res = await request(`${r.gw.adminUrl as string}/plugins/cache/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() }
  }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`/invalidate on a ${store} store: the fetches under way are not stored, and the URL is deleted`, async t => {
    let extra = ''
    if (store === 'redis') {
      const redis = await RedisProcess.start()
      t.teardown(() => redis.stop())
      extra = `stores:\n  shared: { type: redis, url: "${redis.url}", keyPrefix: "inv:" }\n`
    }
    const held: Array<() => void> = []
    const r = await rig(t, (req, res, n) => {
      const body = `${req.url as string} #${n}`
      const answer = () => res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': Buffer.byteLength(body) }).end(body)
      if (req.headers['x-hold'] === undefined) answer(); else held.push(answer)
    }, store === 'redis' ? '{ store: shared }' : '{}', extra)
    const invalidate = await invalidator(r)
    const name = store === 'redis' ? 'shared' : 'memory'
    t.match((await r.get('/i/1')).cacheStatus, /stored/)
    const fetching = r.get('/i/2', { 'x-hold': '1' })
    t.ok(await until(() => held.length === 1), 'a fetch of /i/2 is under way')

    t.same(await invalidate({ store: name, tags: [tagOf(r, '/i/1'), tagOf(r, '/i/2')] }), { status: 200, body: { invalidated: 2 } })
    held[0]?.()
    t.equal((await fetching).cacheStatus, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged', 'the fetch begun before is not stored')
    t.match((await r.get('/i/1')).cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, 'the stored entry is deleted')
    t.match(await invalidate({ store: name, tags: ['not a tag'] }), { status: 400, body: { error: 'bad_invalidation' } })
    // An earlier version's "inFlight": true left the store as it was: refused, as any other field, not read as a deletion.
    t.equal(await eventually(async () => (await r.get('/i/1')).cacheStatus.startsWith('Portcullis; hit'), true), true, 'stored again')
    t.match(await invalidate({ store: name, tags: [tagOf(r, '/i/1')], inFlight: true }), { status: 400, body: { error: 'bad_invalidation', message: /nothing else/ } })
    t.match((await r.get('/i/1')).cacheStatus, /^Portcullis; hit/, 'a refused invalidation deletes nothing')
  })
}
