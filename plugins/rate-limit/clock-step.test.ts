import t from 'tap'
import { Redis } from 'ioredis'
import type { LocalData, LocalValue } from '../../src/index.ts'
import { redisForTest } from '../../test/helpers/redis.ts'
import { gateway, limitedRoute, send, setup } from '../../test/helpers/rate-limit.ts'
import { callUntil } from '../../test/helpers/wait.ts'
import { BucketState, FixedState, SlidingState } from './algorithms.ts'
import { decideScript } from './decide-script.ts'
import { compilePlans } from './plans.ts'
import { Precheck } from './precheck.ts'

// A wall clock stepped back (NTP, a VM restored, the Redis host, a failover to a replica whose
// clock is behind) leaves a token bucket's arrival time, or a window, as far ahead as the step. The
// window algorithms keep a window at most one ahead (a step back across an edge; one further was
// written while the clock ran ahead, and would refuse the key for the whole step). The store says
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

t.test('windows on the memory store: a step of windows either way starts another window, never a longer wait', async t => {
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
  // 10 windows back, the window stored is no step across an edge: it may have been written while the clock ran ahead.
  t.same(statuses, [200, 200, 429, 200, 200, 429, 200], 'the quota spent, then spent again in the window stepped into; forward, a fresh window')
  t.ok(waits.every(w => w <= 120), `Retry-After ${waits.join(', ')}: at most two windows (sliding)`)
})

const DAY = 86_400_000

t.test('windows on the memory store: a day ahead and back, a key touched ahead is a fresh window, its Retry-After within 2 windows', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${['sliding-window', 'fixed-window'].map(a => limitedRoute(a, `/${a}/*`, `{ by: [ "header:x-k" ], algorithm: ${a}, limits: [ { name: m, requests: 5, window: 10s } ] }`)).join('')}`)
  t.teardown(() => gw.close())
  const W = 10_000
  // The clock held still 100 ms into a window (its counters expire on the monotonic clock, 0.9 s on at the soonest).
  const at = Math.floor(realNow() / W) * W + 100
  for (const a of ['sliding-window', 'fixed-window']) {
    const url = `${gw.url}/${a}/`
    const k = { 'x-k': a }
    Date.now = () => at + DAY
    const statuses = [(await send(url, k)).status]
    Date.now = () => at
    let wait: string | string[] | undefined
    for (let i = 0; i < 6; i++) {
      const r = await send(url, k)
      statuses.push(r.status)
      wait ??= r.status === 429 ? r.headers['retry-after'] : undefined
    }
    t.same(statuses, [200, 200, 200, 200, 200, 200, 429], `${a}: the request a day ahead does not count once the clock is back`)
    t.ok(Number(wait) >= 1 && Number(wait) <= 2 * W / 1000, `${a}: Retry-After ${String(wait)}, not a day`)
  }
})

t.test('windows on the memory store: stepped back 400 ms across a window\'s edge, the window\'s count holds (5 of 5, not 9)', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `routes:
${['sliding-window', 'fixed-window'].map(a => limitedRoute(a, `/${a}/*`, `{ by: [ "header:x-k" ], algorithm: ${a}, limits: [ { name: m, requests: 5, window: 10s } ] }`)).join('')}`)
  t.teardown(() => gw.close())
  const W = 10_000
  // The clock held still, 300 ms into a window, then 100 ms before it.
  const edge = (Math.floor(realNow() / W) + 1) * W
  for (const [a, retryAfter] of [['sliding-window', 13], ['fixed-window', 11]] as const) {
    const url = `${gw.url}/${a}/`
    const k = { 'x-k': a }
    const statuses: number[] = []
    let wait: string | string[] | undefined
    for (const at of [300, 300, 300, 300, -100, -100, -100, -100, -100, -100]) {
      Date.now = () => edge + at
      const r = await send(url, k)
      statuses.push(r.status)
      wait ??= r.status === 429 ? r.headers['retry-after'] : undefined
    }
    t.same(statuses, [200, 200, 200, 200, 200, 429, 429, 429, 429, 429], `${a}: 5 pass, as without the step`)
    // Counted from the window's start, 100 ms ahead: fixed, to its end; sliding, until its 5 weigh 4 in the next.
    t.equal(wait, String(retryAfter), `${a}: Retry-After from the window's start, 100 ms ahead`)
  }
})

t.test('windows on the memory store: the clock still back across an edge, a client passes within two windows', async t => {
  const s = await setup(t)
  // A memory store's counter expires on the monotonic clock, at the end of its window (the next, sliding).
  const gw = await gateway(s, `routes:
${limitedRoute('r', '/*', '{ by: [ "header:x-k" ], limits: [ { name: s, requests: 2, window: 1s }, { name: f, requests: 2, window: 1s, algorithm: fixed-window } ] }')}`)
  t.teardown(() => gw.close())
  const url = `${gw.url}/`
  const k = { 'x-k': 'k' }
  // 300 ms into a window, then held 100 ms before it.
  const edge = (Math.floor(realNow() / 1000) + 1) * 1000
  Date.now = () => edge + 300
  t.same([(await send(url, k)).status, (await send(url, k)).status], [200, 200])
  Date.now = () => edge - 100
  const back = await send(url, k)
  t.equal(back.status, 429, 'a step back gives no new window')
  t.equal(back.headers['retry-after'], '2', 'Retry-After from the window\'s start, 100 ms ahead')
  let passed = false
  t.ok(await callUntil(async () => { if ((await send(url, k)).status === 200) passed = true }, () => passed, 5_000), 'passes within 5 s')
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

  const { data, local } = localData([[keys[0] as string, new BucketState(tat)]])
  t.same(decideScript.local(data, keys, args, now), answer, 'the same answer in JavaScript')
  t.same([...local].map(([k, e]) => [k, String(e.value), e.ttlMs]), [[keys[0], `${tat}.000`, undefined]], 'nothing written')
})

t.test('the Lua on Redis and its JavaScript twin: a stored window ahead of the clock is the current one, its counts and expiry kept', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const W = 60_000
  const [sec, usec] = await client.time()
  const idx = Math.floor((Number(sec) * 1000 + Math.floor(Number(usec) / 1000)) / W)
  // What the Redis host wrote in the next window before its clock stepped back: the sliding window
  // 2 counted and 2 in its previous, the fixed one 4; expiries at their windows' instants.
  for (const [alg, state, ends, after] of [['s', new SlidingState(idx + 1, 2, 2), idx + 3, `${idx + 1} 3 2`], ['f', new FixedState(idx + 1, 4), idx + 2, `${idx + 1} 5`]] as const) {
    const key = `clock-step:${process.pid}:${alg}`
    const args = [alg, '5', String(W), '5']
    const [s, us] = await client.time()
    await client.set(key, String(state), 'PX', ends * W - (Number(s) * 1000 + Math.floor(Number(us) / 1000)))
    const { data, local } = localData([[key, state]])
    const allowed: number[] = []
    for (let i = 0; i < 3; i++) {
      const answer = await client.eval(decideScript.lua, 1, key, ...args) as number[]
      const now = answer[answer.length - 1] as number
      t.same(decideScript.local(data, [key], args, now), answer, `${alg}: the same answer in JavaScript`)
      allowed.push(answer[0] as number)
    }
    t.same(allowed, [1, 0, 0], `${alg}: one more fits in the window's 5`)
    t.equal(await client.get(key), after, `${alg}: counted in the window ahead`)
    const [s2, us2] = await client.time()
    const left = ends * W - (Number(s2) * 1000 + Math.floor(Number(us2) / 1000))
    const pttl = await client.pttl(key)
    t.ok(pttl <= left && pttl >= left - 50, `${alg}: its expiry's instant kept (${pttl} ms, ${left} to the instant)`)
    t.same([...local].map(([k, e]) => [k, String(e.value), e.ttlMs]), [[key, after, undefined]], `${alg}: in memory, counted in place`)
    await client.del(key)
  }
})

/** A LocalData over a map, as the memory store's, recording each write's time to live. */
function localData (entries: Array<[string, LocalValue]>): { data: LocalData, local: Map<string, { value: LocalValue, ttlMs: number | undefined }> } {
  const local = new Map(entries.map(([k, value]) => [k, { value, ttlMs: undefined as number | undefined }]))
  const data: LocalData = {
    get: k => local.get(k)?.value,
    set: (k, value, ttlMs) => { local.set(k, { value, ttlMs }) },
    delete: k => { local.delete(k) }
  }
  return { data, local }
}

t.test('the Lua on Redis and its JavaScript twin: a window written a day ahead (the clock stepped forward, then back) is no state, written over', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const W = 60_000
  const serverNow = async () => { const [s, us] = await client.time(); return Number(s) * 1000 + Math.floor(Number(us) / 1000) }
  const idx = Math.floor(await serverNow() / W)
  // What the Lua wrote for one request while Redis's clock ran a day ahead, its expiry a day on too.
  for (const [alg, state] of [['s', new SlidingState(idx + DAY / W, 1, 0)], ['f', new FixedState(idx + DAY / W, 1)]] as const) {
    const key = `clock-step:${process.pid}:day:${alg}`
    const args = [alg, '5', String(W), '5']
    await client.set(key, String(state), 'PX', DAY + 2 * W)
    const { data } = localData([[key, state]])
    const allowed: number[] = []
    let retry = 0
    for (let i = 0; i < 6; i++) {
      const answer = await client.eval(decideScript.lua, 1, key, ...args) as number[]
      const now = answer[answer.length - 1] as number
      t.same(decideScript.local(data, [key], args, now), answer, `${alg}: the same answer in JavaScript`)
      allowed.push(answer[0] as number)
      if (answer[0] === 0) retry = answer[3] as number
    }
    t.same(allowed, [1, 1, 1, 1, 1, 0], `${alg}: the window's 5, the request a day ahead not counted`)
    t.ok(retry > 0 && retry <= 2 * W, `${alg}: the sixth retries in ${retry} ms, within 2 windows`)
    const pttl = await client.pttl(key)
    t.ok(pttl > 0 && pttl <= 2 * W, `${alg}: the key written over, expiring in ${pttl} ms, within 2 windows`)
    await client.del(key)
  }
})

t.test('the Lua on Redis: a stored number past 2^53 is no state, not an error', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const W = 60_000
  const [sec] = await client.time()
  // The last: a count in the clock's window no request could have made (had it been read: 429).
  const idx = Math.floor(Number(sec) * 1000 / W)
  for (const [alg, value] of [['s', '99999999999999999999 1 0'], ['f', '99999999999999999999 1'], ['s', `${idx} 99999999999999999999 0`]] as const) {
    const key = `clock-step:${process.pid}:huge:${alg}`
    await client.set(key, value)
    const answer = await client.eval(decideScript.lua, 1, key, alg, '5', String(W), '5') as number[]
    t.same(answer.slice(0, 3), [1, 1, 4], `${alg} ${value}: allowed, the first of a new window`)
    t.ok(await client.pttl(key) <= 2 * W, `${alg} ${value}: written over, expiring within 2 windows`)
    await client.del(key)
  }
  // In JavaScript (the memory store holds only its own states) the window too far ahead is no state.
  const key = `clock-step:${process.pid}:huge`
  const { data, local } = localData([[key, new SlidingState(1e20, 1, 0)]])
  t.same(decideScript.local(data, [key], ['s', '5', String(W), '5'], realNow()).slice(0, 3), [1, 1, 4], 'the same in JavaScript')
  t.equal((local.get(key)?.value as SlidingState).count, 1, 'written over')
})
