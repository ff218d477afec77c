import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { fresh, rig } from '../../test/helpers/cache-rig.ts'
import { until } from '../../test/helpers/wait.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { Collapser } from './collapse.ts'

const send = (res: ServerResponse, status: number, headers: Record<string, string>, body = '') => {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body)
}
/** Sends without the Date Node adds by itself. */
const sendUndated = (res: ServerResponse, status: number, headers: Record<string, string>, body = '') => {
  res.sendDate = false
  send(res, status, headers, body)
}
const conditional = (req: IncomingMessage) => req.headers['if-none-match'] !== undefined

t.test('a 304 that adds Vary: the freshened entry is the variant of the request that revalidated it; other values miss', async t => {
  const r = await rig(t, (req, res, n) => {
    const lang = String(req.headers['accept-language'])
    if (conditional(req)) send(res, 304, { 'cache-control': 'max-age=60', etag: '"a"', vary: 'Accept-Language' })
    // Age 5 past max-age 1: stale at once, kept to be revalidated.
    else if (n === 1) send(res, 200, { 'cache-control': 'max-age=1', age: '5', etag: '"a"' }, `lang=${lang}`)
    else send(res, 200, { 'cache-control': 'max-age=60', etag: `"${lang}"`, vary: 'Accept-Language' }, `lang=${lang}`)
  })
  const fr = { 'accept-language': 'fr' }
  t.match((await r.get('/vy', fr)).cacheStatus, /; stored; ttl=-[45]$/)
  const revalidated = await r.get('/vy', fr)
  t.same([revalidated.body, revalidated.headers.vary, fresh(revalidated.cacheStatus)], ['lang=fr', 'Accept-Language', 'Portcullis; fwd=stale; fwd-status=304; stored; ttl=60'])
  t.match((await r.get('/vy', fr)).cacheStatus, /^Portcullis; hit; ttl=(59|60)$/, 'fr: a hit')
  for (const lang of ['en', 'de']) {
    const other = await r.get('/vy', { 'accept-language': lang })
    t.same([other.body, fresh(other.cacheStatus)], [`lang=${lang}`, 'Portcullis; fwd=vary-miss; fwd-status=200; stored; ttl=60'], `${lang}: not fr's copy`)
  }
  t.equal((await r.get('/vy', { 'accept-language': 'en' })).body, 'lang=en')
  t.equal((await r.get('/vy', fr)).body, 'lang=fr')
  t.equal(r.seen.length, 4)
})

t.test('stale-if-error stands in for 500, 502, 503 and 504 only: another 5xx is forwarded, and stored when it may be', async t => {
  const r = await rig(t, (req, res, n) => {
    const status = Number(req.url?.split('/')[1])
    const first = r.seen.filter(s => s.url === req.url).length === 1
    if (first) send(res, 200, { 'cache-control': req.url?.endsWith('swr') === true ? 'max-age=1, stale-while-revalidate=600' : 'max-age=1, stale-if-error=600', age: '5', etag: '"e"' }, 'stored')
    else send(res, status, { 'cache-control': 'max-age=60' }, `error ${n}`)
  })
  for (const path of ['/501', '/505', '/507', '/599', '/503']) await r.get(path)
  const notImplemented = await r.get('/501')
  t.same([notImplemented.status, fresh(notImplemented.cacheStatus)], [501, 'Portcullis; fwd=stale; fwd-status=501; stored; ttl=60'], '501: cacheable by default, stored')
  const hit = await r.get('/501')
  t.same([hit.status, hit.body], [501, notImplemented.body])
  t.match(hit.cacheStatus, /^Portcullis; hit/)
  for (const status of [505, 507, 599]) {
    const answer = await r.get(`/${status}`)
    t.same([answer.status, answer.cacheStatus], [status, `Portcullis; fwd=stale; fwd-status=${status}; detail=status`], `${status}: forwarded`)
  }
  const unavailable = await r.get('/503')
  t.same([unavailable.status, unavailable.body], [200, 'stored'], '503: the stale response')
  t.match(unavailable.cacheStatus, /detail=stale-if-error$/)

  // In the background (stale-while-revalidate), a 501 replaces the stale entry.
  await r.get('/501/swr')
  t.match((await r.get('/501/swr')).cacheStatus, /^Portcullis; hit; ttl=-/)
  let latest = await r.get('/501/swr')
  for (let i = 0; i < 100 && latest.status !== 501; i++) {
    await new Promise(resolve => setTimeout(resolve, 20))
    latest = await r.get('/501/swr')
  }
  t.same([latest.status, r.seen.filter(s => s.url === '/501/swr').length], [501, 2], 'the background revalidation\'s 501 was stored')
  t.match(latest.cacheStatus, /^Portcullis; hit; ttl=(59|60)$/)
})

t.test('a HEAD that goes upstream updates the stored GET when its validators match, and drops it when they do not', async t => {
  let etag = '"h"'
  const r = await rig(t, (req, res) => {
    if (req.method === 'HEAD') send(res, 200, { 'cache-control': 'max-age=600', etag, 'x-head': etag }, 'hello')
    else send(res, 200, { 'cache-control': 'max-age=300', etag: '"h"' }, 'hello')
  }, '{ requestCacheControl: honor }')
  await r.get('/h')
  const head = await r.get('/h', { 'cache-control': 'no-cache' }, 'HEAD')
  t.same([head.status, head.headers.etag, fresh(head.cacheStatus, 600)], [200, '"h"', 'Portcullis; fwd=request; fwd-status=200; stored; ttl=600'])
  const get = await r.get('/h')
  t.same([get.body, get.headers['x-head']], ['hello', '"h"'], 'the stored GET, with the HEAD\'s headers')
  t.match(get.cacheStatus, /^Portcullis; hit; ttl=(599|600)$/, 'freshened by the HEAD')
  etag = '"h2"'
  t.equal((await r.get('/h', { 'cache-control': 'no-cache' }, 'HEAD')).cacheStatus, 'Portcullis; fwd=request; fwd-status=200; detail=head')
  t.match((await r.get('/h')).cacheStatus, /^Portcullis; fwd=uri-miss/, 'another representation: the entry went')
  t.same(r.seen.map(s => s.method), ['GET', 'HEAD', 'HEAD', 'GET'])
})

t.test('a request\'s no-store keeps a valid entry: a 304 to it stores nothing and drops nothing; it starts no background revalidation', async t => {
  const r = await rig(t, (req, res) => {
    if (conditional(req)) send(res, 304, { 'cache-control': req.url === '/swr' ? 'max-age=60' : 'max-age=600', etag: '"n"' })
    else send(res, 200, { 'cache-control': req.url === '/swr' ? 'max-age=1, stale-while-revalidate=600' : 'max-age=600', age: req.url === '/swr' ? '5' : '0', etag: '"n"' }, 'body')
  }, '{ requestCacheControl: honor }')
  await r.get('/n')
  const answered = await r.get('/n', { 'cache-control': 'no-cache, no-store' })
  t.same([answered.status, answered.body, answered.cacheStatus], [200, 'body', 'Portcullis; fwd=request; fwd-status=304; detail=no-store'])
  t.match((await r.get('/n')).cacheStatus, /^Portcullis; hit; ttl=\d+$/, 'the entry is still there')
  t.equal(await metricValue(r.gw.adminUrl as string, 'portcullis_cache_requests_total{route="r",result="revalidated"}'), 0, 'nothing freshened')

  await r.get('/swr')
  t.match((await r.get('/swr', { 'cache-control': 'no-store' })).cacheStatus, /^Portcullis; hit; ttl=-/, 'served stale')
  await new Promise(resolve => setTimeout(resolve, 300)) // asserting that no revalidation comes
  t.equal(r.seen.filter(s => s.url === '/swr').length, 1, 'no background revalidation for a request with no-store')
  t.match((await r.get('/swr')).cacheStatus, /^Portcullis; hit; ttl=-/, 'the entry is still there')
  t.ok(await until(() => r.seen.filter(s => s.url === '/swr').length === 2), 'a request without no-store revalidates it')
  let latest = ''
  for (let i = 0; i < 100 && !/ttl=\d/.test(latest); i++) latest = (await r.get('/swr')).cacheStatus
  t.match(latest, /^Portcullis; hit; ttl=(59|60)$/, 'freshened')
})

t.test('a request collapsed on a revalidation reports what its lookup found and the status the upstream answered with', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const r = await rig(t, (req, res) => {
    if (conditional(req)) void gate.then(() => send(res, 304, { 'cache-control': 'max-age=60', etag: '"s"' }))
    else send(res, 200, { 'cache-control': 'max-age=1', age: '5', etag: '"s"' }, 'stale body')
  })
  await r.get('/c')
  // Released once the second request waits on the leader's fetch: released before, it would find the freshened entry (a hit).
  let waiting = 0
  const waitFor = Collapser.prototype.waitFor
  Collapser.prototype.waitFor = function (this: Collapser<unknown>, key: string) {
    const pending = waitFor.call(this, key)
    if (pending !== undefined) waiting++
    return pending
  }
  t.teardown(() => { Collapser.prototype.waitFor = waitFor })
  const both = [r.get('/c'), r.get('/c')]
  t.ok(await until(() => r.seen.length === 2 && waiting === 1, 10_000), 'the leader is revalidating, the other request waits for it')
  release()
  const answers = await Promise.all(both)
  t.equal(r.seen.length, 2, 'one revalidation')
  t.same(answers.map(a => a.body), ['stale body', 'stale body'])
  t.same(answers.map(a => fresh(a.cacheStatus)).sort(), [
    'Portcullis; fwd=stale; fwd-status=304; collapsed; ttl=60',
    'Portcullis; fwd=stale; fwd-status=304; stored; ttl=60'
  ])
})

t.test('a response without Date is dated when it came: a 304 restarts the age; If-Modified-Since is compared with it', async t => {
  const r = await rig(t, (req, res) => {
    if (conditional(req)) sendUndated(res, 304, { 'cache-control': 'max-age=60', etag: '"d"' })
    else if (req.url === '/dated') send(res, 200, { 'cache-control': 'max-age=1', etag: '"d"', date: new Date(Date.now() - 10_000).toUTCString() }, 'old')
    else sendUndated(res, 200, { 'cache-control': 'max-age=60' }, 'undated')
  })
  t.match((await r.get('/dated')).cacheStatus, /; stored; ttl=-(9|10)$/, '10 s old by its Date')
  const revalidated = await r.get('/dated')
  t.equal(fresh(revalidated.cacheStatus), 'Portcullis; fwd=stale; fwd-status=304; stored; ttl=60')
  t.match(revalidated.headers.age, /^[01]$/, 'aged from the 304, not the old Date (10 s)')
  t.ok(Math.abs(Date.parse(String(revalidated.headers.date)) - Date.now()) < 3000, 'the 304\'s receipt is the stored Date')
  const hit = await r.get('/dated')
  t.match([hit.cacheStatus, hit.headers.age], [/^Portcullis; hit; ttl=(59|60)$/, /^[01]$/])

  const received = Date.now()
  await r.get('/undated')
  const stored = await r.get('/undated')
  t.ok(Math.abs(Date.parse(String(stored.headers.date)) - received) < 3000, 'a hit carries the time the response came')
  const later = await r.get('/undated', { 'if-modified-since': new Date(Date.now() + 3_600_000).toUTCString() })
  t.same([later.status, later.body], [304, ''], 'not modified since a time after it came')
  t.match(later.cacheStatus, /^Portcullis; hit/)
  const earlier = await r.get('/undated', { 'if-modified-since': new Date(Date.now() - 3_600_000).toUTCString() })
  t.same([earlier.status, earlier.body], [200, 'undated'])
  t.equal(r.seen.length, 3)
})

t.test('metrics: a 304 that freshens nothing counts as miss, only-if-cached\'s 504 as unsatisfiable, other methods not at all', async t => {
  const r = await rig(t, (req, res) => {
    const cc = req.url === '/no-store' ? 'no-store' : 'max-age=60'
    if (conditional(req)) send(res, 304, { 'cache-control': cc, etag: req.url === '/other' ? '"b"' : '"a"' })
    else send(res, 200, { 'cache-control': 'max-age=1', age: '5', etag: '"a"' }, 'body')
  }, '{ requestCacheControl: honor }')
  const count = (result: string) => metricValue(r.gw.adminUrl as string, `portcullis_cache_requests_total{route="r",result="${result}"}`)
  const counts = async () => Object.fromEntries(await Promise.all(['hit', 'miss', 'stale', 'revalidated', 'bypass', 'collapsed', 'unsatisfiable'].map(async k => [k, await count(k)] as const)))
  for (const path of ['/fresh', '/no-store', '/other']) await r.get(path)
  t.equal(fresh((await r.get('/fresh')).cacheStatus), 'Portcullis; fwd=stale; fwd-status=304; stored; ttl=60')
  t.equal((await r.get('/no-store')).cacheStatus, 'Portcullis; fwd=stale; fwd-status=304; detail=uncacheable')
  t.equal((await r.get('/other')).cacheStatus, 'Portcullis; fwd=stale; fwd-status=304; detail=validator-mismatch')
  t.same(await counts(), { hit: 0, miss: 5, stale: 0, revalidated: 1, bypass: 0, collapsed: 0, unsatisfiable: 0 }, 'three misses that stored, two 304s that freshened nothing, one that did')
  const only = await r.get('/nothing', { 'cache-control': 'only-if-cached' })
  t.same([only.status, only.cacheStatus], [504, 'Portcullis; fwd=uri-miss; detail=only-if-cached'])
  t.equal(await count('unsatisfiable'), 1)
  t.equal(await count('miss'), 5, 'nothing was forwarded')
  const post = await r.get('/fresh', {}, 'POST')
  t.equal(post.cacheStatus, 'Portcullis; fwd=method')
  t.same(await counts(), { hit: 0, miss: 5, stale: 0, revalidated: 1, bypass: 0, collapsed: 0, unsatisfiable: 1 }, 'a method the cache does not serve is not counted')
})
