import t from 'tap'
import { request } from 'undici'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { gateway, limitedRoute, metric, rateLimitHeaders, send, setup, sleep, storesUp } from '../../test/helpers/rate-limit.ts'
import { callUntil, until } from '../../test/helpers/wait.ts'
import { SHARED_RECHECK_MS } from './precheck.ts'

// Two gateways (each its own Redis connection) share one redis-server, as instances behind a load balancer.

const N = 20
const WINDOW_S = 3600

t.test('two gateways share a limit: 3N concurrent requests, N pass', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const s = await setup(t)
  const config = `stores:
  shared: { type: redis, url: "${redis.url}", commandTimeout: 2s }
routes:
${['sliding-window', 'token-bucket', 'fixed-window'].map(a => limitedRoute(a, `/${a}`, `{ store: shared, by: [ route ], algorithm: ${a}, limits: [ { name: n, requests: ${N}, window: ${WINDOW_S}s } ] }`)).join('')}`
  const gws = [await gateway(s, config), await gateway(s, config)]
  t.teardown(() => Promise.all(gws.map(g => g.close())))
  for (const algorithm of ['fixed-window', 'token-bucket', 'sliding-window']) {
    const started = performance.now()
    const answers = await Promise.all(Array.from({ length: 3 * N }, (_, i) => send(`${(gws[i % 2] as typeof gws[0]).url}/${algorithm}`)))
    const spanS = (performance.now() - started) / 1000
    const passed = answers.filter(a => a.status === 200).length
    t.equal(answers.filter(a => a.status === 429).length + passed, 3 * N, `${algorithm}: every answer is 200 or 429`)
    if (algorithm === 'sliding-window') {
      // The documented bound for a burst of span d from a fresh key: at most N + N·d/W (the burst may cross a window edge).
      const bound = Math.floor(N + N * spanS / WINDOW_S)
      t.ok(passed >= N && passed <= bound, `${algorithm}: ${passed} passed, within [${N}, ${bound}]`)
    } else {
      t.equal(passed, N, `${algorithm}: exactly N passed`)
    }
    t.equal(answers.filter(a => a.status === 200 && a.headers.ratelimit === undefined).length, 0, `${algorithm}: no request went through uncounted (store error)`)
    const remaining = answers.filter(a => a.status === 200).map(a => rateLimitHeaders(a).limit[0]?.r).sort((a, b) => Number(a) - Number(b))
    if (algorithm === 'fixed-window') t.same(remaining, Array.from({ length: N }, (_, i) => i), 'each allowed request saw its own remaining count, N-1 down to 0')
  }
})

t.test('Redis down: allow or deny as configured, within the command timeout; limiting resumes when it is back', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const s = await setup(t)
  const route = (name: string, onStoreError: string) => limitedRoute(name, `/${name}`, `{ store: shared, by: [ "header:x-k" ], onStoreError: ${onStoreError}, limits: [ { name: n, requests: 2, window: 1h } ] }`)
  const gw = await gateway(s, `stores:
  shared: { type: redis, url: "${redis.url}", commandTimeout: 1s }
routes:
${route('allow', 'allow')}${route('deny', 'deny')}`)
  t.teardown(() => gw.close())
  const admin = gw.adminUrl as string
  const k = (key: string) => ({ 'x-k': key })

  // Hung: the server is up but does not answer (stopped, SIGSTOP: at once, unlike a DEBUG SLEEP sent
  // down a connection, which a busy machine may deliver late). Each request waits for the command timeout, no longer.
  const pid = redis.pid as number
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  process.kill(pid, 'SIGSTOP')
  const [hungAllow, hungDeny] = await Promise.all([send(`${gw.url}/allow`, k('a1')), send(`${gw.url}/deny`, k('d1'))])
  resume()
  t.equal(hungAllow.status, 200)
  t.equal(hungAllow.headers.ratelimit, undefined, 'allowed without a RateLimit header: nothing was counted')
  t.equal(hungDeny.status, 503)
  t.match(hungDeny.body, { error: 'rate_limit_unavailable', message: 'the rate-limit store is unavailable', requestId: String })
  t.equal(hungDeny.headers['retry-after'], '1', 'a 503 says when to try again')
  // A request that waited for the server would not answer at all (it stays stopped until both have): the late bound is generous.
  for (const a of [hungAllow, hungDeny]) t.ok(a.ms >= 900 && a.ms < 4_000, `answered after ${Math.round(a.ms)} ms (command timeout 1 s)`)

  // Rejected just before: the pre-check trusts that for SHARED_RECHECK_MS.
  t.same([(await send(`${gw.url}/allow`, k('over'))).status, (await send(`${gw.url}/allow`, k('over'))).status, (await send(`${gw.url}/allow`, k('over'))).status], [200, 200, 429])
  // Killed: the connection is gone; requests fail at once.
  await redis.kill()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'store is down: plugins apply their failure rule until it is back')), 'the gateway saw the connection drop')
  const downAllow = await send(`${gw.url}/allow`, k('a2'))
  const downDeny = await send(`${gw.url}/deny`, k('d2'))
  t.equal(downAllow.status, 200)
  t.equal(downDeny.status, 503)
  // One waiting for the server would not be answered before the restart below: the bound is generous, as above.
  for (const a of [downAllow, downDeny]) t.ok(a.ms < 3_000, `answered in ${Math.round(a.ms)} ms`)
  t.equal(downDeny.headers['retry-after'], '1')
  const known = await send(`${gw.url}/allow`, k('over'))
  t.equal(known.status, 429, 'a key known to be over its limit stays rejected locally for a while (the local pre-check)')
  t.equal(known.headers['retry-after'] !== undefined, true)

  const errors = await metric(admin, 'portcullis_ratelimit_requests_total{route="allow",result="store_error"}')
  t.equal(errors, 2, 'store errors counted')
  t.equal(await metric(admin, 'portcullis_ratelimit_requests_total{route="deny",result="store_error"}'), 2)
  const lines = gw.logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith('rate-limit: store "shared" failed'))
  t.equal(lines.length, 2, 'one log line per route at most every 10 s, not one per failure')

  // Back: the store reconnects on its own, and limiting resumes without a reload.
  await redis.restart()
  t.ok(await storesUp(admin), 'the store is up again')
  const after = [await send(`${gw.url}/deny`, k('d3')), await send(`${gw.url}/deny`, k('d3')), await send(`${gw.url}/deny`, k('d3'))]
  t.same(after.map(a => a.status), [200, 200, 429])
  t.match(rateLimitHeaders(after[0] as typeof after[0]).limit, [{ name: 'n', r: 1 }])
})

t.test('the request path of the limit stays in one store call per request', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const s = await setup(t)
  const gw = await gateway(s, `stores:
  shared: { type: redis, url: "${redis.url}", commandTimeout: 2s }
routes:
${limitedRoute('r', '/*', `{ store: shared, by: [ "header:x-k" ], limits: [ { name: a, requests: 100, window: 1s }, { name: b, requests: 1000, window: 1m, algorithm: token-bucket }, { name: c, requests: 10000, window: 1d, by: [ "header:x-k", ip ], algorithm: fixed-window } ] }`)}`)
  t.teardown(() => gw.close())
  await send(`${gw.url}/`, { 'x-k': 'warm' })
  const monitor = await redis.monitor()
  t.teardown(() => monitor.close())
  const sent = monitor.commands
  for (let i = 0; i < 10; i++) t.equal((await request(`${gw.url}/`, { headers: { 'x-k': `k${i}` } })).statusCode, 200)
  await redis.cli('PING')
  t.ok(await until(() => sent.includes('ping')), 'MONITOR has seen everything sent before')
  t.same(sent.filter(c => c !== 'ping'), Array(10).fill('evalsha'), 'three limits, ten requests: ten EVALSHA and nothing else (MONITOR, script-internal calls excluded)')
})

t.test('the local pre-check: a key over its limit is rejected without asking the store until it may pass; localPrecheck: false always asks', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const s = await setup(t)
  // one: 1 per key and hour; wide: per route, far from its limit; short: 1 per key and second.
  // commandTimeout 2s: with the default 100 ms a loaded machine let requests through (onStoreError: allow).
  const limits = '[ { name: one, requests: 1, window: 1h }, { name: wide, requests: 100, window: 1h, by: [ route ] } ]'
  const gw = await gateway(s, `stores:
  shared: { type: redis, url: "${redis.url}", commandTimeout: 2s }
routes:
${limitedRoute('pre', '/pre', `{ store: shared, by: [ "header:x-k" ], algorithm: token-bucket, limits: ${limits} }`)}${limitedRoute('nopre', '/nopre', `{ store: shared, by: [ "header:x-k" ], algorithm: token-bucket, localPrecheck: false, limits: ${limits} }`)}${limitedRoute('short', '/short', '{ store: shared, by: [ "header:x-k" ], algorithm: token-bucket, limits: [ { name: s, requests: 1, window: 1s } ] }')}`)
  t.teardown(() => gw.close())
  const k = (key: string) => ({ 'x-k': key })
  t.same([(await send(`${gw.url}/nopre`, k('n'))).status, (await send(`${gw.url}/nopre`, k('n'))).status], [200, 429])
  t.same([(await send(`${gw.url}/pre`, k('a'))).status, (await send(`${gw.url}/pre`, k('a'))).status], [200, 429])
  // The counters are gone: only a request that asks the store sees it.
  await redis.cli('FLUSHALL')
  const known = await send(`${gw.url}/pre`, k('a'))
  t.equal(known.status, 429, `rejected locally (for ${SHARED_RECHECK_MS} ms after the store's answer)`)
  // The wait the store gave, counted from when it was asked (the requests since may take a few seconds on a busy machine).
  const retry = Number(known.headers['retry-after'])
  t.ok(retry > 3590 && retry <= 3600, `Retry-After ${retry}`)
  t.equal(known.headers.ratelimit, `"one";r=0;t=${retry}`)
  t.match(known.body, { error: 'rate_limited', limit: 'one', retryAfter: retry })
  const other = await send(`${gw.url}/pre`, k('b'))
  t.equal(other.status, 200, 'only the key that was rejected is known: not wide\'s, which allowed it')
  t.equal(other.headers.ratelimit, '"one";r=0;t=3600', 'its own quota')
  t.equal((await send(`${gw.url}/nopre`, k('n'))).status, 200, 'localPrecheck: false: the store was asked')
  // The store's answer is trusted for SHARED_RECHECK_MS, not for the hour: then it is asked again, and lets the key through.
  let passed = false
  t.ok(await callUntil(async () => { if ((await send(`${gw.url}/pre`, k('a'))).status === 200) passed = true }, () => passed, SHARED_RECHECK_MS + 30_000),
    'a key whose counter the store lost passes again within seconds')

  t.same([(await send(`${gw.url}/short`, k('a'))).status, (await send(`${gw.url}/short`, k('a'))).status], [200, 429])
  await sleep(1000)
  t.equal((await send(`${gw.url}/short`, k('a'))).status, 200, 'the key passes again once its wait is over')
})
