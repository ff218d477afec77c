import t, { type Test } from 'tap'
import { redisForTest } from '../../test/helpers/redis.ts'
import { gateway, limitedRoute, send, setup, sleep, type Setup } from '../../test/helpers/rate-limit.ts'

// Keys do not include requests or burst: limits of one name, algorithm, window and key parts share
// a token bucket whatever their bursts (two routes, or a consumer's override). An arrival time the
// bigger burst left far ahead is one the smaller burst never reaches by itself: no request of the
// smaller one may move it back (a request it rejects refilled the bigger one's bucket).

const LIMIT = '{ name: n, requests: 100, window: 100s }'
const SMALL = '{ name: n, requests: 100, window: 100s, burst: 1 }'

/**
 * For `ms`: `big` until a 429, then one `small` (a 429 too); the requests that passed, and the
 * most that may (the bucket of 100, and one more a second, refilled as it goes).
 */
async function spend (big: () => Promise<number>, small: () => Promise<number>, ms: number): Promise<{ passed: number, most: number }> {
  let passed = 0
  const start = performance.now()
  while (performance.now() - start < ms) {
    while (await big() === 200) passed++
    if (await small() === 200) passed++
    // Paced: the loop stands for clients, not a flood.
    await sleep(50)
  }
  return { passed, most: 100 + Math.ceil((performance.now() - start) / 1000) + 1 }
}

async function twoRoutes (t: Test, s: Setup, store: string, stores = ''): Promise<void> {
  const gw = await gateway(s, `${stores}routes:
${limitedRoute('a', '/a', `{ ${store}by: [ "header:x-k" ], algorithm: token-bucket, limits: [ ${LIMIT} ] }`)}${limitedRoute('b', '/b', `{ ${store}by: [ "header:x-k" ], algorithm: token-bucket, limits: [ ${SMALL} ] }`)}`)
  t.teardown(() => gw.close())
  const k = { 'x-k': 'k' }
  const { passed, most } = await spend(async () => (await send(`${gw.url}/a`, k)).status, async () => (await send(`${gw.url}/b`, k)).status, 3_000)
  t.ok(passed <= most, `${passed} passed on the shared key: at most ${most}`)
  t.ok(passed >= 100, `the bucket's ${passed}`)
}

t.test('memory store: a route with a smaller burst on the same key refills nothing', async t => {
  await twoRoutes(t, await setup(t), '')
})

t.test('Redis: a route with a smaller burst on the same key refills nothing', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  await twoRoutes(t, await setup(t), 'store: shared, ', `stores:
  shared: { type: redis, url: "${redis.url}", keyPrefix: "shared-bucket:${process.pid}:", commandTimeout: 2s }
`)
})

t.test('memory store: a consumer whose override has a smaller burst refills nothing', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `consumers:
  - id: small
    metadata:
      rate-limit: { n: { burst: 1 } }
plugins:
  test-auth: {}
routes:
${limitedRoute('a', '/a', `{ by: [ "header:x-k" ], algorithm: token-bucket, limits: [ ${LIMIT} ] }`)}`)
  t.teardown(() => gw.close())
  const url = `${gw.url}/a`
  const small = { 'x-k': 'k', 'x-consumer': 'small' }
  t.equal((await send(url, small)).headers['ratelimit-policy'], '"n";q=1;w=1', 'the consumer\'s bucket of 1')
  const { passed, most } = await spend(async () => (await send(url, { 'x-k': 'k' })).status, async () => (await send(url, small)).status, 3_000)
  t.ok(passed <= most, `${passed} passed on the shared key: at most ${most}`)
  t.ok(passed >= 100, `the bucket's ${passed}`)
})
