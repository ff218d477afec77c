import t from 'tap'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { gateway, limitedRoute, metric, rateLimitHeaders, send, setup } from '../../test/helpers/rate-limit.ts'

// A call that times out stays queued in Redis (a pause, a slow command ahead of it) and runs once
// Redis gets to it: it must not charge the request the gateway already answered without it.

t.test('requests whose store call timed out are not charged when Redis runs the calls later (CLIENT PAUSE)', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const s = await setup(t)
  const route = (name: string, onStoreError: string) =>
    limitedRoute(name, `/${name}`, `{ store: shared, by: [ "header:x-k" ], onStoreError: ${onStoreError}, limits: [ { name: a, requests: 10, window: 1h, algorithm: fixed-window } ] }`)
  const gw = await gateway(s, `stores:
  shared: { type: redis, url: "${redis.url}", commandTimeout: 1s }
routes:
${route('deny', 'deny')}${route('allow', 'allow')}`)
  t.teardown(() => gw.close())
  // The longest request before the pause: more than the largest offset the gateway learnt from their answers (see ServerClock).
  let slowest = 0
  const remaining = async (path: string) => {
    const sent = performance.now()
    const a = await send(`${gw.url}${path}`, { 'x-k': path })
    slowest = Math.max(slowest, performance.now() - sent)
    t.equal(a.status, 200, `${path}: allowed`)
    return rateLimitHeaders(a).limit[0]?.r
  }
  t.same([await remaining('/deny'), await remaining('/allow')], [9, 9])

  // Writes paused: the scripts wait in Redis, the gateway gives up after commandTimeout.
  await redis.cli('CLIENT', 'PAUSE', '20000', 'WRITE')
  let unpaused = false
  const unpause = async () => { if (!unpaused) { unpaused = true; await redis.cli('CLIENT', 'UNPAUSE') } }
  t.teardown(unpause)
  const [denied, allowed] = await Promise.all([
    Promise.all(Array.from({ length: 6 }, () => send(`${gw.url}/deny`, { 'x-k': '/deny' }))),
    Promise.all(Array.from({ length: 6 }, () => send(`${gw.url}/allow`, { 'x-k': '/allow' })))
  ])
  t.same(denied.map(a => a.status), Array(6).fill(503), 'deny: 503 on the timeout')
  t.same(allowed.map(a => [a.status, a.headers.ratelimit]), Array(6).fill([200, undefined]), 'allow: through, uncounted')
  // A call's deadline is its send time plus commandTimeout plus that offset: answered after its
  // timeout, each call is past it once `slowest` more has passed (more on a loaded machine, where an
  // answer came late). Redis then runs the queued calls, past their deadline; the next requests queue behind them.
  await new Promise(resolve => setTimeout(resolve, Math.ceil(slowest) + 5))
  await unpause()
  t.same([await remaining('/deny'), await remaining('/allow')], [8, 8], 'the 12 refused or uncounted requests were not charged')
  t.equal(await metric(gw.adminUrl as string, 'portcullis_ratelimit_requests_total{route="deny",result="store_error"}'), 6)
})
