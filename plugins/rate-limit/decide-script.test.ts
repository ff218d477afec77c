import t from 'tap'
import { Redis } from 'ioredis'
import type { LocalData, LocalValue } from '../../src/index.ts'
import { redisForTest } from '../../test/helpers/redis.ts'
import { decideScript } from './decide-script.ts'

// The Lua script (Redis) and its JavaScript twin (memory store) must give the same answers and
// store the same states with the same expiries (the memory store's states are objects updated in
// place; their string forms are compared). Both run here on the same calls at the same instants: the Lua on a real
// redis-server, with its clock (TIME) and key expiry taken over by the test, so that time is chosen.

const TIME = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
const SET = "redis.call('SET', KEYS[i], states[i], 'PX', ttls[i])"
t.ok(decideScript.lua.includes(TIME) && decideScript.lua.includes(SET), 'the script reads the clock and sets expiries as this test expects')
// The instant is the last ARGV; the states are set without expiry and their ttls returned after the answer.
const LUA = decideScript.lua.replace(TIME, 'local now = tonumber(ARGV[#ARGV])\n').replace(SET, "redis.call('SET', KEYS[i], states[i])")
  .replace(/return res\s*$/, 'if res[1] == 1 then for i = 1, n do res[#res + 1] = ttls[i] end end\nreturn res\n')

// A reproducible stream of pseudo-random numbers (a linear congruential generator, as parse-ip.test.ts).
let seed = 7
const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; return (seed >>> 8) % n }

// Limits: algorithm, quota, window (ms), bucket. Quotas and windows that give fractional rates (1000/16000 = 0.0625 ms).
const LIMITS: Array<[string, number, number, number]> = [
  ['s', 1, 1000, 0], ['s', 3, 1000, 0], ['s', 10, 60_000, 0], ['s', 2, 333, 0],
  ['t', 1, 1000, 1], ['t', 3, 1000, 1], ['t', 16_000, 1000, 16_000], ['t', 5, 60_000, 2], ['t', 2, 7, 1],
  ['f', 1, 1000, 0], ['f', 2, 1000, 0], ['f', 5, 60_000, 0], ['f', 1, 7, 0]
]

t.test('Lua on Redis and JavaScript: the same answers, states and expiry instants on 5,000 calls', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const prefix = `decide-twins:${process.pid}:`

  // The memory side: a map with expiry at the test's instants. The Redis side expires by the same rule.
  const local = new Map<string, { value: LocalValue, until: number }>()
  const redisUntil = new Map<string, number>()
  let now = 1_700_000_000_000 + rnd(1_000_000)
  const data: LocalData = {
    get: key => { const e = local.get(key); return e === undefined || e.until <= now ? undefined : e.value },
    set: (key, value, ttlMs) => { local.set(key, { value, until: now + (ttlMs as number) }) },
    delete: key => { local.delete(key) }
  }

  let compared = 0
  // Outcomes seen per algorithm, so that the comparison is known to cover both answers of each.
  const seen = new Set<string>()
  for (let call = 0; call < 5000; call++) {
    // Mostly within a window of a second, so that counts reach their quotas; now and then minutes.
    now += [0, 1, rnd(20), rnd(50), rnd(300), rnd(1000), rnd(3000), rnd(120_000)][rnd(8)] as number
    // One to three distinct limits of four, a different four every 200 calls, so that each key sees
    // dense traffic; each limit keeps its own key, so states carry over between calls.
    const picked = [...new Set(Array.from({ length: 1 + rnd(3) }, () => (Math.floor(call / 200) * 3 + rnd(4)) % LIMITS.length))]
    const keys = picked.map(i => `${prefix}${i}`)
    const args = picked.flatMap(i => LIMITS[i]!.map(String))
    for (const key of keys) {
      const until = redisUntil.get(key)
      if (until !== undefined && until <= now) { await client.del(key); redisUntil.delete(key) }
    }
    const fromRedis = await client.eval(LUA, keys.length, ...keys, ...args, String(now)) as number[]
    const fromJs = decideScript.local(data, keys, args, now)
    const answer = fromRedis.slice(0, fromJs.length)
    const ttls = fromRedis.slice(fromJs.length)
    // Redis sets every charged key's expiry; in memory a state counted in place keeps the one it had: the same instant.
    const untils = ttls.map((ttl, i) => `${now + ttl}/${local.get(keys[i] as string)?.until}`)
    if (answer.join() !== fromJs.join() || untils.some(u => u.split('/')[0] !== u.split('/')[1])) {
      t.fail(`call ${call} at ${now}, limits ${picked.map(i => LIMITS[i]!.join('/')).join(', ')}: Redis ${fromRedis.join()}, JavaScript ${fromJs.join()} (expiries Redis/memory ${untils.join()})`)
      break
    }
    picked.forEach((l, i) => seen.add(`${LIMITS[l]![0]}:${fromJs[1 + 3 * i]}`))
    keys.forEach((key, i) => { if (ttls[i] !== undefined) redisUntil.set(key, now + ttls[i]) })
    const states = await Promise.all(keys.map(k => client.get(k)))
    const twins = keys.map(k => data.get(k))
    if (states.join('|') !== twins.map(v => v === undefined ? '' : String(v)).join('|')) {
      t.fail(`call ${call} at ${now}: stored states differ: Redis ${states.join('|')}, JavaScript ${twins.join('|')}`)
      break
    }
    compared++
  }
  t.equal(compared, 5000, 'every call compared equal')
  t.same([...seen].sort(), ['f:0', 'f:1', 's:0', 's:1', 't:0', 't:1'], 'each algorithm both allowed and rejected')
  await client.del(...LIMITS.map((_, i) => `${prefix}${i}`))
})

t.test('a call run after its deadline (the ARGV after the limits) decides and writes nothing: [-1, now], in Lua and in JavaScript', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const key = `decide-late:${process.pid}`
  const args = ['f', '5', '60000', '5']
  const before = Date.now()
  const late = await client.eval(decideScript.lua, 1, key, ...args, '1') as number[]
  t.match(late, [-1, Number])
  t.ok((late[1] as number) >= before - 1000, 'the server\'s time')
  t.equal(await client.exists(key), 0, 'nothing written')
  t.match(await client.eval(decideScript.lua, 1, key, ...args, String(Date.now() + 60_000)), [1, 1, 4, Number, Number], 'before its deadline: decided')
  t.match(await client.eval(decideScript.lua, 1, key, ...args), [1, 1, 3, Number, Number], 'no deadline: decided')
  await client.del(key)

  const written: string[] = []
  const data: LocalData = { get: () => undefined, set: k => { written.push(k) }, delete: () => {} }
  t.same(decideScript.local(data, [key], [...args, '1000'], 1001), [-1, 1001])
  t.same(written, [])
  t.match(decideScript.local(data, [key], [...args, '1000'], 1000), [1, 1, 4, Number, 1000], 'at the deadline: decided')
})

t.test('a bucket whose interval rounds away (more than a request per µs, refused at load) still sets an expiry of 1 ms at least, in Lua and in JavaScript', async t => {
  const redis = await redisForTest()
  t.teardown(() => redis.close())
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const key = `decide-tiny:${process.pid}`
  // 10^10 per second: a 0.1 ns interval, lost in the arrival time's µs.
  const args = ['t', '10000000000', '1000', '1']
  // The 1 ms expiry is over by the time anything could read it: that SET took it is the test.
  t.match(await client.eval(decideScript.lua, 1, key, ...args), [1, 1, 0, Number, Number], 'no "invalid expire time" from SET')
  await client.del(key)

  const ttls: Array<number | undefined> = []
  const data: LocalData = { get: () => undefined, set: (_k, _v, ttlMs) => { ttls.push(ttlMs) }, delete: () => {} }
  t.match(decideScript.local(data, [key], args, 1_700_000_000_000), [1, 1, 0, Number, 1_700_000_000_000])
  t.same(ttls, [1], 'not 0, which the memory store takes for no expiry')
})
