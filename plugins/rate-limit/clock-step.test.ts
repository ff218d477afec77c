import t from 'tap'
import { Redis } from 'ioredis'
import type { LocalData, LocalValue } from '../../src/index.ts'
import { redisForTest } from '../../test/helpers/redis.ts'
import { gateway, limitedRoute, send, setup } from '../../test/helpers/rate-limit.ts'
import { callUntil } from '../../test/helpers/wait.ts'
import { BucketState } from './algorithms.ts'
import { decideScript } from './decide-script.ts'
import { compilePlans } from './plans.ts'
import { Precheck } from './precheck.ts'

// A wall clock stepped back (NTP, a VM restored, the Redis host, a failover to a replica whose
// clock is behind) leaves a token bucket's arrival time as far ahead as the step. The store says
// so (a clamp would refill a bigger bucket sharing the key: see shared-bucket.test.ts); the local
// pre-check held the key, on the monotonic clock, for the length of the step, even once the clock
// was restored. The memory store reads Date.now(), which the tests move; its expiries run on the
// monotonic clock.

const realNow = Date.now
t.afterEach(() => { Date.now = realNow })
/** Date.now() runs `ms` off the real clock until the test ends. */
const stepBy = (ms: number) => { Date.now = () => realNow() + ms }

const TEN_MINUTES = 600_000

t.test('token bucket on the memory store, pre-check on: stepped back 10 minutes, the store says so; the clock restored, a client passes within the bucket\'s fill', async t => {
  const s = await setup(t)
  // 20 a second: an interval of 50 ms, a bucket of 40 filled in 2 s.
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', '{ by: [ "header:x-k" ], algorithm: token-bucket, limits: [ { name: m, requests: 20, window: 1s, burst: 40 } ] }')}`)
  t.teardown(() => gw.close())
  const url = `${gw.url}/`
  // The bucket spent: its counter kept 2 s (a memory store forgets it when it would be full).
  const spend = async (headers: Record<string, string>) => {
    const statuses = new Set<number>()
    for (let i = 0; i < 40; i++) statuses.add((await send(url, headers)).status)
    t.same([...statuses], [200], 'the bucket spent')
  }
  const k = { 'x-k': 'k' }
  await spend(k)
  stepBy(-TEN_MINUTES)
  const back = await send(url, k)
  t.equal(back.status, 429, 'a step back gives no new tokens')
  const wait = Number(back.headers['retry-after'])
  t.ok(wait >= 590 && wait <= 601, `Retry-After ${wait}: until the clock catches up`)
  t.equal((await send(url, k)).headers['retry-after'], '2', 'the pre-check holds it a bucket\'s fill (2 s) at most')
  const passes = async (headers: Record<string, string>) => {
    let passed = false
    return await callUntil(async () => { if ((await send(url, headers)).status === 200) passed = true }, () => passed, 5_000)
  }
  Date.now = realNow
  t.ok(await passes(k), 'the clock restored: passes within 5 s (the pre-check held it 599 s)')

  // The clock stays back: a memory store's counter expires on the monotonic clock, when its bucket
  // would have been full (Redis's, on its wall clock, holds until the clock catches up: tested below).
  const two = { 'x-k': 'two' }
  await spend(two)
  stepBy(-TEN_MINUTES)
  t.equal((await send(url, two)).status, 429)
  t.ok(await passes(two), 'the clock still back: passes within 5 s')
})

t.test('windows on the memory store: a step either way starts another window, never a longer wait', async t => {
  const s = await setup(t)
  // The store's answers (the pre-check holds a key no longer than its limit can wait: tested below).
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', '{ by: [ "header:x-k" ], localPrecheck: false, limits: [ { name: s, requests: 2, window: 1m }, { name: f, requests: 2, window: 1m, algorithm: fixed-window } ] }')}`)
  t.teardown(() => gw.close())
  const url = `${gw.url}/`
  const k = { 'x-k': 'k' }
  const statuses: number[] = []
  const waits: number[] = []
  for (const step of [0, 0, 0, -TEN_MINUTES, -TEN_MINUTES, -TEN_MINUTES, TEN_MINUTES]) {
    stepBy(step)
    const a = await send(url, k)
    statuses.push(a.status)
    if (a.status === 429) waits.push(Number(a.headers['retry-after']))
  }
  t.same(statuses, [200, 200, 429, 200, 200, 429, 200], 'the quota spent, then spent again in the window stepped into; forward, a fresh window')
  t.ok(waits.every(w => w <= 120), `Retry-After ${waits.join(', ')}: at most two windows (sliding)`)
})

t.test('the pre-check holds a rejection no longer than its limit can wait', async t => {
  const plan = compilePlans({
    limits: [
      { name: 's', requests: 3, window: '1m' },
      { name: 'f', requests: 3, window: '1m', algorithm: 'fixed-window' },
      { name: 't', requests: 100, window: '1m', burst: 50, algorithm: 'token-bucket' }
    ]
  }, []).base
  const keys = ['ks', 'kf', 'kt']
  const HOUR = 3_600_000
  for (const [i, longest] of [[0, 120_000], [1, 60_000], [2, 30_000]] as const) {
    const p = new Precheck(Infinity)
    const d = [0, 1, 3, 0, 1, 3, 0, 1, 50, 0]
    d.splice(1 + 3 * i, 3, 0, 0, HOUR)
    p.remember(plan, keys, d, 0)
    t.equal(p.check(plan, keys, 0)?.[3 + 3 * i], longest, `${keys[i]}: an hour held to ${longest} ms`)
    t.equal(p.check(plan, keys, longest), undefined, `${keys[i]}: asked again at ${longest} ms`)
  }
})

t.test('the Lua on Redis and its JavaScript twin: a stored arrival time an hour ahead is answered as it is, and nothing written', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const keys = [`clock-step:${process.pid}:t`, `clock-step:${process.pid}:f`]
  // A bucket of 100 at 100 a minute (600 ms an interval), and a fixed window that lets the request through.
  const args = ['t', '100', '60000', '100', 'f', '5', '60000', '5']
  const [sec, usec] = await client.time()
  const tat = Number(sec) * 1000 + Math.floor(Number(usec) / 1000) + 3_600_000
  // What the Redis host wrote before its clock stepped back an hour (its expiry, absolute, moved back with it).
  await client.set(keys[0] as string, `${tat}.000`, 'PX', 3_700_000)
  const answer = await client.eval(decideScript.lua, keys.length, ...keys, ...args) as number[]
  const now = answer[answer.length - 1] as number
  // A token an interval after the arrival time is a bucket ahead.
  t.same(answer.slice(0, 4), [0, 0, 0, tat + 600 - 60_000 - now], 'rejected until the clock catches up')
  t.same(answer.slice(4, 6), [1, 5], 'the window allowed it, uncharged')
  t.equal(await client.get(keys[0] as string), `${tat}.000`, 'the bucket left as it was')
  t.ok(await client.pttl(keys[0] as string) > 3_600_000, 'and its expiry')
  t.equal(await client.exists(keys[1] as string), 0, 'the window counted nothing')
  await client.del(...keys)

  const local = new Map<string, { value: LocalValue, ttlMs: number | undefined }>([[keys[0] as string, { value: new BucketState(tat), ttlMs: undefined }]])
  const data: LocalData = {
    get: key => local.get(key)?.value,
    set: (key, value, ttlMs) => { local.set(key, { value, ttlMs }) },
    delete: key => { local.delete(key) }
  }
  t.same(decideScript.local(data, keys, args, now), answer, 'the same answer in JavaScript')
  t.same([...local].map(([k, e]) => [k, String(e.value), e.ttlMs]), [[keys[0], `${tat}.000`, undefined]], 'nothing written')
})
