import type { ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'
import { startUpstream, type TestUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// A request waiting on other requests' fetches does so within its onRequest, which
// server.pluginTimeout cuts with a 504 where the cache means it to go upstream. On Redis, a poll
// of the store slept up to 200 ms past collapseTimeout, and a waiter that took over from a leader
// whose client left polled collapseTimeout again: with the default collapseTimeout (just under half
// of server.pluginTimeout) it got the 504.
const HOST = 'api.example.com'
const PLUGIN_TIMEOUT = 720

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())

/** The first request's answer is held (another instance's fetch) until `drop()`; the others' are at once. */
async function heldFirst (t: Test): Promise<TestUpstream & { asked: () => number, drop: () => void }> {
  let n = 0
  const held: ServerResponse[] = []
  const up = await startUpstream((req, res) => {
    req.resume()
    if (++n === 1) { held.push(res); return }
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': 2 }).end('ok')
  })
  t.teardown(() => up.close())
  return Object.assign(up, { asked: () => n, drop: () => { for (const res of held) res.destroy() } })
}

/** A gateway on the Redis store with the default collapseTimeout, `commandTimeout`, `pluginTimeout` (ms). */
async function gateway (t: Test, up: TestUpstream, prefix: string, pluginTimeout = PLUGIN_TIMEOUT, cache = '{ store: shared }', commandTimeout = '100ms'): Promise<TestGateway> {
  const config = sharedStoreConfig(redis.url, up.url, prefix, `{ cache: ${cache} }`).replace('commandTimeout: 2s', `commandTimeout: ${commandTimeout}`)
  const gw = await startGateway(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n  pluginTimeout: ${pluginTimeout}ms\n${config}`)
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string), 'the Redis store is up')
  return gw
}

const get = async (gw: TestGateway, signal?: AbortSignal) => {
  const res = await request(`${gw.url}/t`, { headers: { host: HOST }, signal })
  return { status: res.statusCode, body: await res.body.text(), cacheStatus: String(res.headers['cache-status']) }
}

/**
 * Another instance (`other`) holds the fetch of /t for as long as the test runs; on `gw`, a leader
 * polls the store for it, and a second request waits on that leader. Resolves with the leader's
 * abort, the second request's answer, and when the leader was sent (performance.now()).
 */
async function waiterBehindPoller (t: Test, prefix: string): Promise<{ leave: () => void, waiter: ReturnType<typeof get>, started: number }> {
  const up = await heldFirst(t)
  // The other instance's fetch is held for collapseTimeout at most: long enough to extend it.
  const [gw, other] = [await gateway(t, up, prefix), await gateway(t, up, prefix, 30_000, '{ store: shared, collapseTimeout: 10s }')]
  // Before the gateways close (teardowns run last first): they would wait for it.
  t.teardown(up.drop)
  void get(other).catch(() => {})
  t.ok(await until(() => up.asked() === 1), 'the other instance fetches /t')
  const lock = (await redis.cli('KEYS', `${prefix}*#fetch`)).split('\n')[0] as string
  t.equal(await redis.cli('PEXPIRE', lock, '60000'), '1', 'and holds the fetch past the test')
  const leaving = new AbortController()
  const started = performance.now()
  const leader = get(gw, leaving.signal).catch(() => {})
  t.teardown(() => leader)
  t.ok(await until(() => gw.gateway.runtime.inFlight === 1))
  const waiter = get(gw)
  t.ok(await until(() => gw.gateway.runtime.inFlight === 2), 'a request waits on the leader')
  return { leave: () => leaving.abort(), waiter, started }
}

t.test('a waiter whose leader\'s client leaves late in its wait: upstream, not a 504', async t => {
  const { leave, waiter, started } = await waiterBehindPoller(t, 'late:')
  // Late in the leader's wait (collapseTimeout was 359 ms, 209 ms now): this much time passing is
  // what the test is about.
  await new Promise(resolve => setTimeout(resolve, started + 290 - performance.now()))
  leave()
  const answer = await waiter
  t.same([answer.status, answer.body], [200, 'ok'], 'within server.pluginTimeout')
})

t.test('a waiter whose leader\'s client leaves at once takes over, and its wait ends in time too', async t => {
  const { leave, waiter } = await waiterBehindPoller(t, 'early:')
  leave()
  const answer = await waiter
  t.same([answer.status, answer.body], [200, 'ok'])
  t.match(answer.cacheStatus, /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, 'it fetched for itself, the other instance\'s fetch still held')
})

t.test('memory store: a waiter handed on from flight to flight (invalidations, leaders leaving) stops waiting in time', async t => {
  // GETs held but the waiter's (X-W), which answers once it goes upstream itself; POSTs at once.
  const held: ServerResponse[] = []
  let asked = 0
  const up = await startUpstream((req, res) => {
    asked++
    req.resume()
    if (req.method === 'GET' && req.headers['x-w'] === undefined) held.push(res)
    else res.writeHead(req.method === 'GET' ? 200 : 204, { 'content-length': req.method === 'GET' ? 2 : 0 }).end(req.method === 'GET' ? 'ok' : '')
  })
  t.teardown(() => up.close())
  // collapseTimeout left out: 499 ms, under half of server.pluginTimeout (1 s).
  const gw = await startGateway(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n  pluginTimeout: 1s\n${sharedStoreConfig(redis.url, up.url, 'memory:', '{ cache: {} }')}`)
  t.teardown(() => gw.close())
  const leaving: AbortController[] = []
  t.teardown(() => { for (const c of leaving) c.abort(); for (const res of held) res.destroy() })
  const leader = () => {
    const c = new AbortController()
    leaving.push(c)
    request(`${gw.url}/t`, { signal: c.signal }).then(r => r.body.dump(), () => {})
    return () => c.abort()
  }
  const leave1 = leader()
  t.ok(await until(() => asked === 1))
  const waiter = request(`${gw.url}/t`, { headers: { 'x-w': '1' } })
  t.ok(await until(() => gw.gateway.runtime.inFlight === 2), 'a request waits on the first leader')
  // Each flight is left after this much of its wait: the time passing is what the test is about.
  const handOn = async (leave: () => void, seen: number) => {
    await new Promise(resolve => setTimeout(resolve, 300))
    await (await request(`${gw.url}/t`, { method: 'POST' })).body.dump()
    const next = leader()
    // At least: on a loaded machine the waiter's own wait may have ended first, and it fetched too.
    t.ok(await until(() => asked >= seen), 'a POST invalidated /t, a new request leads its fetch')
    leave()
    return next
  }
  await handOn(await handOn(leave1, 3), 5)
  const answer = await waiter
  t.same([answer.statusCode, await answer.body.text()], [200, 'ok'], 'upstream within server.pluginTimeout, not a 504')
})

t.test('setup: collapseTimeout must leave room for the store reads a wait may end with', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  await t.rejects(gateway(t, up, 'setup:', 1000, '{ store: shared, collapseTimeout: 300ms }', '200ms'), {
    message: /collapseTimeout \(300 ms\) must be less than half of server\.pluginTimeout \(1000 ms\) less 3 × store "shared"'s commandTimeout \(200 ms\)/
  })
  const gw = await gateway(t, up, 'setup:', 1000, '{ store: shared, collapseTimeout: 199ms }', '200ms')
  t.equal((await get(gw)).status, 200, 'one that fits starts')
})
