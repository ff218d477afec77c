import t, { type Test } from 'tap'
import { gunzipSync } from 'node:zlib'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { until } from '../../test/helpers/wait.ts'
import { eventually } from '../../test/stores/store-cases.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { entryStored, numberingUpstream, sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'

// A real redis-server of the test's own: the test kills and restarts it.
const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

const up = await numberingUpstream()
t.teardown(() => up.close())

async function gateway (t: Test): Promise<TestGateway> {
  // At debug: the store failures the cache survives are logged there.
  const gw = await startGateway(`${sharedStoreConfig(redis.url, up.url, 'cache-test:')}logging: { level: debug }\n`)
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string), 'the gateway\'s Redis store is up')
  return gw
}

const INVALIDATION_FAILED = 'cache: store "shared" failed an invalidation by an unsafe request; the URLs are served from the cache until a retry (every second) goes through (logged at most every 10s)'

const get = async (gw: TestGateway, path: string, method = 'GET') => {
  // Both gateways serve one public host name (the Host is part of the key).
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers: { host: 'api.example.com' } })
  return { status: res.statusCode, status_: String(res.headers['cache-status']), body: await res.body.text() }
}

t.test('the cache on a Redis store', async t => {
  const a = await gateway(t)
  const b = await gateway(t)

  t.test('two gateways share one Redis store: stored by one, served by the other, purged and invalidated for both', async t => {
    const first = await get(a, '/shared')
    t.equal(fresh(first.status_), 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60')
    await entryStored(redis, 'cache-test:')
    const fromB = await get(b, '/shared')
    t.match(fromB.status_, /^Portcullis; hit; ttl=\d+$/)
    t.equal(fromB.body, '/shared #1')
    const purged = await request(`${a.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tag":"shared"}' })
    t.same(await purged.body.json(), { purged: 1 })
    t.match((await get(b, '/shared')).status_, /fwd=uri-miss/, 'the purge through one gateway reached the other\'s view')
    await get(a, '/shared')
    await get(b, '/shared', 'DELETE')
    t.match((await get(a, '/shared')).status_, /fwd=uri-miss/, 'invalidated by an unsafe request through the other gateway')
  })

  t.test('Redis killed mid-test: requests pass through, then caching resumes when it is back', async t => {
    await get(a, '/outage')
    await redis.kill()
    const before = up.requests()
    const during = await get(a, '/outage')
    t.equal(during.status, 200)
    t.equal(during.body, `/outage #${before + 1}`, 'answered by the upstream')
    t.equal(during.status_, 'Portcullis; fwd=bypass; fwd-status=200; detail=store-unavailable')
    t.match(await waitForLog(a.logs, { msg: 'cache store unavailable' }), { level: 20, err: { message: /\S/ } })
    const again = await get(b, '/outage')
    t.equal(again.status, 200)
    const deleted = await get(a, '/outage', 'DELETE')
    t.equal(deleted.status, 200, 'an unsafe request is answered though its invalidation fails')
    t.match(await waitForLog(a.logs, { msg: INVALIDATION_FAILED }), { level: 40, store: 'shared', error: /\S/, failures: 1 })
    const metrics = await (await request(`${a.adminUrl as string}/metrics`)).body.text()
    t.match(metrics, /portcullis_cache_requests_total\{route="r",result="bypass"\} [1-9]/)
    const purge = await request(`${a.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })
    t.equal(purge.statusCode, 503, 'a purge that cannot reach the store says so')
    const failed = await purge.body.json() as Record<string, unknown>
    t.equal(failed.error, 'store_unavailable')
    t.match(failed.message, /\S/, 'with the store\'s error')
    await redis.restart()
    t.ok(await storeUp(a.adminUrl as string))
    let status = ''
    for (let i = 0; i < 50 && !status.includes('hit'); i++) status = (await get(a, '/after')).status_
    t.match(status, /^Portcullis; hit/, 'stored and served again once Redis is back')
  })

  t.test('a Redis that refuses writes (maxmemory reached): answered by the upstream, nothing stored, the failure logged', async t => {
    await redis.cli('CONFIG', 'SET', 'maxmemory-policy', 'noeviction')
    await redis.cli('CONFIG', 'SET', 'maxmemory', '1')
    t.teardown(() => redis.cli('CONFIG', 'SET', 'maxmemory', '0'))
    const before = up.requests()
    // Only this test's lines: right after the restart above, a write can fail while the gateway reconnects.
    const mark = a.logs.length
    const first = await get(a, '/full')
    const failed = () => a.logs.slice(mark).find(l => l.msg === 'cache store unavailable: response not stored')
    t.ok(await until(() => failed() !== undefined))
    t.match(failed(), { level: 20, err: { message: /^OOM/ } })
    const second = await get(a, '/full')
    t.same([first.body, second.body], [`/full #${before + 1}`, `/full #${before + 2}`], 'both answered by the upstream')
    t.match(second.status_, /^Portcullis; fwd=uri-miss; fwd-status=200/, 'nothing was stored')
  })
})

t.test('concurrent misses on two gateways sharing the store: one upstream request for both, none kept waiting when nothing is stored', async t => {
  let n = 0
  let release = () => {}
  let gate = Promise.resolve()
  const slow = await startUpstream((req, res) => {
    const body = `${req.url as string} #${++n}`
    // Held until every client has sent its request: then all of them are misses under way.
    void gate.then(() => res.writeHead(200, { 'cache-control': req.url === '/private' ? 'private, max-age=60' : 'max-age=60', 'content-length': Buffer.byteLength(body) }).end(body))
  })
  t.teardown(() => slow.close())
  // 11 s: twice it and 3 × commandTimeout (2 s) under server.pluginTimeout (30 s).
  const config = sharedStoreConfig(redis.url, slow.url, 'collapse-test:', '{ cache: { store: shared, collapseTimeout: 11s } }')
  const [a, b] = await Promise.all([startGateway(config), startGateway(config)])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  t.ok(await storeUp(a.adminUrl as string) && await storeUp(b.adminUrl as string), 'both stores up')

  const burst = async (path: string) => {
    gate = new Promise<void>(resolve => { release = resolve })
    const before = n
    const monitor = await redis.monitor()
    t.teardown(() => monitor.close())
    const all = [a, b].flatMap(gw => Array.from({ length: 10 }, () => get(gw, path)))
    // One request reached the upstream, every request is at its gateway (a loaded machine may take
    // a while to open 20 connections), and the other gateway's leader has found the fetch taken: both
    // leaders' takes have run, the only script calls until the upstream answers (ioredis sends each as
    // one EVAL, or EVALSHA once its connection has loaded it).
    await until(() => n > before)
    await until(() => a.gateway.runtime.inFlight === 10 && b.gateway.runtime.inFlight === 10, 10_000)
    t.ok(await until(() => monitor.commands.filter(c => c === 'eval' || c === 'evalsha').length >= 2, 10_000), `${path}: both gateways took the fetch`)
    // And every request has looked the entry up (a GET each): none finds it stored after the release.
    t.ok(await until(() => monitor.commands.filter(c => c === 'get').length >= all.length, 10_000), `${path}: every request looked it up`)
    monitor.close()
    release()
    return Promise.all(all)
  }
  const hot = await burst('/hot')
  t.equal(n, 1, 'one upstream request for the 20 concurrent misses on two gateways')
  t.same(new Set(hot.map(r => r.body)), new Set(['/hot #1']))
  t.equal(hot.filter(r => /collapsed/.test(r.status_)).length, 19, 'every other request collapsed, across gateways too')

  const started = performance.now()
  const priv = await burst('/private')
  t.same(priv.map(r => r.status), Array(20).fill(200))
  t.equal(n, 21, 'a private answer is shared with nobody: each request went upstream')
  t.ok(performance.now() - started < 10_000, 'the other gateway stopped waiting when the fetch was given back, not at collapseTimeout (11 s)')
})

t.test('stale-while-revalidate on two gateways sharing the store: one background revalidation for both', async t => {
  let n = 0
  let release = () => {}
  let gate = Promise.resolve()
  const up = await startUpstream((req, res) => {
    n++
    // Stale on arrival (Age past max-age) but within stale-while-revalidate: every request revalidates in the background.
    void gate.then(() => res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', age: '5', etag: `"${n}"`, 'content-length': 1 }).end('x'))
  })
  t.teardown(() => up.close())
  const config = sharedStoreConfig(redis.url, up.url, 'swr-test:')
  const [a, b] = await Promise.all([startGateway(config), startGateway(config)])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  t.ok(await storeUp(a.adminUrl as string) && await storeUp(b.adminUrl as string), 'both stores up')
  await get(a, '/swr')
  await entryStored(redis, 'swr-test:')

  gate = new Promise<void>(resolve => { release = resolve })
  t.match((await get(a, '/swr')).status_, /^Portcullis; hit; ttl=-\d+$/, 'served stale at once')
  t.ok(await until(() => n === 2), 'the first gateway revalidates in the background (held by the upstream)')
  t.match((await get(b, '/swr')).status_, /^Portcullis; hit; ttl=-\d+$/, 'served stale by the other gateway too')
  // Time for the other gateway's revalidation to reach the upstream, were it sent.
  await new Promise(resolve => setTimeout(resolve, 200))
  release()
  t.equal(n, 2, 'one revalidation for both gateways')
})

t.test('hits on an unchanged Redis entry reuse its decoding: compress sends its kept copy; a changed entry is decoded anew', async t => {
  let version = 1
  const json = () => JSON.stringify({ version, items: Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item ${i}` })) })
  const origin = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' }).end(json())
  })
  t.teardown(() => origin.close())
  const gw = await startGateway(sharedStoreConfig(redis.url, origin.url, 'recent-test:', '{ cache: { store: shared }, compress: {} }'))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))
  const get = async () => {
    const res = await request(`${gw.url}/doc`, { headers: { 'accept-encoding': 'gzip' } })
    const body = gunzipSync(Buffer.from(await res.body.arrayBuffer())).toString()
    return { version: (JSON.parse(body) as { version: number }).version, length: res.headers['content-length'], status: String(res.headers['cache-status']) }
  }
  await get()
  await entryStored(redis, 'recent-test:')
  const hits = [await get(), await get(), await get()]
  t.ok(hits.every(h => /hit/.test(h.status) && h.version === 1))
  t.same(hits.map(h => h.length !== undefined), [false, false, true], 'the third hit is sent from compress\'s copy: the entry was one object from hit to hit')
  version = 2
  await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })
  t.equal((await get()).version, 2, 'a miss after the purge')
  await entryStored(redis, 'recent-test:')
  for (let i = 0; i < 3; i++) t.equal((await get()).version, 2, 'hits of the new entry decode the new bytes')
})

t.test('Redis down: a request counted once (bypass), only-if-cached answered 504, concurrent misses collapsed in the process', async t => {
  const down = await RedisProcess.start()
  t.teardown(() => down.stop())
  const seen: string[] = []
  let release = () => {}
  let gate = Promise.resolve()
  const slow = await startUpstream((req, res) => {
    const body = `${req.url as string} #${seen.push(req.url as string)}`
    void gate.then(() => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) }).end(body))
  })
  t.teardown(() => slow.close())
  const gw = await startGateway(sharedStoreConfig(down.url, slow.url, 'down-test:', '{ cache: { store: shared, collapseTimeout: 11s, requestCacheControl: honor } }'))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))
  await down.kill()
  const admin = gw.adminUrl as string
  const count = (result: string) => metricValue(admin, `portcullis_cache_requests_total{route="r",result="${result}"}`)

  const one = await get(gw, '/one')
  t.equal(one.status_, 'Portcullis; fwd=bypass; fwd-status=200; detail=store-unavailable')
  t.same([await count('bypass'), await count('miss')], [1, 0], 'counted once, as bypass')

  const onlyCached = await request(`${gw.url}/one`, { headers: { host: 'api.example.com', 'cache-control': 'only-if-cached' } })
  await onlyCached.body.text()
  t.equal(onlyCached.statusCode, 504, 'only-if-cached: nothing stored can be used')
  t.equal(String(onlyCached.headers['cache-status']), 'Portcullis; fwd=bypass; detail=only-if-cached')
  t.equal(seen.length, 1, 'the upstream was not asked')
  t.same([await count('bypass'), await count('miss')], [2, 0])

  gate = new Promise<void>(resolve => { release = resolve })
  const all = Array.from({ length: 10 }, () => get(gw, '/hot'))
  await until(() => seen.includes('/hot'))
  await until(() => gw.gateway.runtime.inFlight === 10, 10_000)
  release()
  const hot = await Promise.all(all)
  t.equal(seen.filter(u => u === '/hot').length, 1, 'one upstream request for 10 concurrent misses')
  t.same(new Set(hot.map(r => r.body)), new Set(['/hot #2']))
  t.equal(hot.filter(r => r.status_ === 'Portcullis; fwd=bypass; fwd-status=200; detail=store-unavailable').length, 1, 'the one that went upstream')
  t.equal(hot.filter(r => /^Portcullis; fwd=bypass; fwd-status=200; collapsed; ttl=(59|60); detail=store-unavailable$/.test(r.status_)).length, 9, 'the others got its answer')
  t.same([await count('bypass'), await count('miss'), await count('collapsed')], [3, 0, 9])
  t.equal(seen.filter(u => u === '/hot').length, 1)
  t.match((await get(gw, '/hot')).body, '/hot #3', 'nothing was stored')
})

t.test('an invalidation the store failed (Redis stopped: SIGSTOP) is counted, warned, and done once Redis answers again', async t => {
  const gw = await startGateway(sharedStoreConfig(redis.url, up.url, 'invalidate-test:').replace('commandTimeout: 2s', 'commandTimeout: 300ms'))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))
  const failures = () => metricValue(gw.adminUrl as string, 'portcullis_cache_invalidation_failures_total{route="r"}')
  const stored = (await get(gw, '/changing')).body
  await entryStored(redis, 'invalidate-test:')
  t.match(await get(gw, '/changing'), { status_: /^Portcullis; hit/, body: stored })

  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let stopped = true
  const resume = () => { if (stopped) { stopped = false; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  const posted = await get(gw, '/changing', 'POST')
  t.equal(posted.status, 200, 'answered without waiting for its invalidation to fail (after commandTimeout)')
  t.equal(await eventually(failures, 1), 1, 'counted')
  t.match(await waitForLog(gw.logs, { msg: INVALIDATION_FAILED }), { level: 40, store: 'shared', error: /\S/, failures: 1 }, 'warned')
  await get(gw, '/changing', 'PUT')
  t.equal(await eventually(failures, 2), 2)
  t.equal(gw.logs.filter(l => l.msg === INVALIDATION_FAILED).length, 1, 'one line per 10 s')

  resume()
  // Retried every second: the old body is served until then, not for its whole max-age.
  let after = await get(gw, '/changing')
  for (let i = 0; i < 100 && /hit/.test(after.status_); i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    after = await get(gw, '/changing')
  }
  t.match(after.status_, /fwd=uri-miss/, 'invalidated once Redis answered again')
  t.not(after.body, stored, 'the upstream\'s new answer')
  t.equal(await failures(), 2, 'the retry is no new failure')
})
