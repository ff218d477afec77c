import t, { type Test } from 'tap'
import { rig, type Rig } from '../../test/helpers/cache-rig.ts'

// requestCacheControl: by default (ignore) a client's Cache-Control and Pragma do not send it past
// the cache (browsers send max-age=0 on every reload); `honor` keeps RFC 9111 5.2.1.
const BYPASSING: Array<Record<string, string>> = [{ 'cache-control': 'no-cache' }, { pragma: 'no-cache' }, { 'cache-control': 'max-age=0' }, { 'cache-control': 'min-fresh=3600' }]

const counting = async (t: Test, config: string): Promise<Rig> =>
  await rig(t, (_req, res, n) => {
    const body = `answer ${n}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': body.length }).end(body)
  }, config)

t.test('default: request no-cache, Pragma, max-age=0 and min-fresh are served from the cache, collapsed on a miss', async t => {
  const r = await counting(t, '{}')
  const cold = await Promise.all(Array.from({ length: 20 }, (_, i) => r.get('/k', BYPASSING[i % BYPASSING.length] as Record<string, string>)))
  t.equal(r.seen.length, 1, 'concurrent misses collapse whatever their directives')
  t.same(new Set(cold.map(a => a.body)), new Set(['answer 1']))
  const hot = await Promise.all(Array.from({ length: 50 }, (_, i) => r.get('/k', BYPASSING[i % BYPASSING.length] as Record<string, string>)))
  t.equal(r.seen.length, 1, 'no request went upstream')
  t.ok(hot.every(a => /^Portcullis; hit/.test(a.cacheStatus)), 'all hits')
})

t.test('default: only-if-cached and max-stale change nothing; a request\'s no-store still keeps its answer out of the store', async t => {
  const r = await counting(t, '{}')
  const miss = await r.get('/cold', { 'cache-control': 'only-if-cached' })
  t.same([miss.status, miss.body], [200, 'answer 1'], 'a miss goes upstream, not 504')
  t.match((await r.get('/cold', { 'cache-control': 'max-stale' })).cacheStatus, /^Portcullis; hit/)
  t.match((await r.get('/ns', { 'cache-control': 'no-store' })).cacheStatus, /detail=no-store/)
  t.match((await r.get('/ns')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'the no-store request\'s answer was not stored')
})

t.test('requestCacheControl: honor: the request\'s directives send it upstream, as RFC 9111 5.2.1 allows', async t => {
  const r = await counting(t, '{ requestCacheControl: honor }')
  await r.get('/k')
  for (const [i, headers] of BYPASSING.entries()) {
    const a = await r.get('/k', headers)
    t.match(a.cacheStatus, /^Portcullis; fwd=request; fwd-status=200; stored/, JSON.stringify(headers))
    t.equal(r.seen.length, i + 2)
  }
  t.equal((await r.get('/cold', { 'cache-control': 'only-if-cached' })).status, 504)
})
