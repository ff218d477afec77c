import t from 'tap'
import { request } from 'undici'
import { rig } from '../../test/helpers/cache-rig.ts'
import { until } from '../../test/helpers/wait.ts'

// POST /plugins/cache/invalidate: how a worker passes a write's invalidation on to the others.
// Alone, it deletes the URL tags from this worker's store (a memory store is each worker's own);
// with "inFlight": true (a shared store the writing worker deletes from), only what is being
// fetched here is kept from being stored: the store is left as it is.

t.test('/invalidate deletes the URL; with inFlight only the fetches under way are not stored', async t => {
  const held: Array<() => void> = []
  const r = await rig(t, (req, res, n) => {
    const body = `${req.url as string} #${n}`
    const answer = () => res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': Buffer.byteLength(body) }).end(body)
    if (req.headers['x-hold'] === undefined) answer(); else held.push(answer)
  })
  const invalidate = async (body: unknown) => {
    const res = await request(`${r.gw.adminUrl as string}/plugins/cache/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() }
  }
  const tags = [`u:${new URL(r.gw.url).host}/i/1`]
  t.match((await r.get('/i/1')).cacheStatus, /stored/)
  const fetching = r.get('/i/2', { 'x-hold': '1' })
  t.ok(await until(() => held.length === 1), 'a fetch of /i/2 is under way')

  t.same(await invalidate({ store: 'memory', tags: [...tags, tags[0]?.replace('/i/1', '/i/2')], inFlight: true }), { status: 200, body: { invalidated: 2 } })
  held[0]?.()
  t.equal((await fetching).cacheStatus, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=purged', 'the fetch begun before is not stored')
  t.match((await r.get('/i/1')).cacheStatus, /^Portcullis; hit/, 'the entry is left in the store')

  t.same(await invalidate({ store: 'memory', tags }), { status: 200, body: { invalidated: 1 } })
  t.match((await r.get('/i/1')).cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, 'without inFlight: deleted')
  t.match(await invalidate({ store: 'memory', tags, inFlight: 'yes' }), { status: 400, body: { error: 'bad_invalidation' } })
})
