import t, { type Test } from 'tap'
import { MemoryStore } from '../../src/stores/memory-store.ts'
import { RedisStore, type RedisStoreEvents, type RedisStoreSettings } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { redisWithClient } from '../helpers/redis.ts'
import { srandmemberCutProxy } from '../helpers/redis-cut-proxy.ts'
import { until } from '../helpers/wait.ts'
import { eventually } from './store-cases.ts'

// A tag's index holds its live keys (not every key ever set with it), and a purge of a tag of any
// size goes a batch at a time, what a failed one left taken up by the next.
const { redis, raw } = await redisWithClient(t)

interface Seen { states: Array<StoreSnapshot['state']>, failed: number }

async function upStore (t: Test, settings: Partial<RedisStoreSettings>, seen: Seen = { states: [], failed: 0 }): Promise<RedisStore> {
  const events: RedisStoreEvents = { state (_s, state) { seen.states.push(state) }, failed () { seen.failed++ }, command () {} }
  const store = new RedisStore('test', { url: redis.url, keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 2_000, ...settings }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return store
}

const many = (n: number, f: (i: number) => Promise<unknown>) => Promise.all(Array.from({ length: n }, (_, i) => f(i)))

t.test('redis: keys whose TTL is past leave their tag\'s set as later keys are set with the tag', async t => {
  const store = await upStore(t, { keyPrefix: 'prune:' })
  // A long-lived key keeps the set (which lives as long as its longest-lived key), as any request of the path would.
  await store.set('/flood', 'v', { tags: ['u:/flood'], ttlMs: 60_000 })
  await many(100, i => store.set(`/flood?_=${i}`, 'v', { tags: ['u:/flood'], ttlMs: 30 }))
  t.equal(await eventually(async () => await raw.exists('prune:/flood?_=99'), 0), 0, 'all expired')
  for (let i = 100; i < 110; i++) await store.set(`/flood?_=${i}`, 'v', { tags: ['u:/flood'], ttlMs: 60_000 })
  t.equal(await raw.scard('prune:tag:{u:/flood}'), 11, 'the set holds the live keys only')
  t.equal(await raw.zcard('prune:tag:{u:/flood}:expiry'), 11, 'and so does its expiry index')
  t.equal(await store.deleteTag('u:/flood'), 11)
  t.same(await raw.keys('prune:tag:*'), [], 'no tag set, index or record is left')
})

t.test('redis: a purge of a large tag goes a batch at a time, not one command per member all at once', async t => {
  const store = await upStore(t, { keyPrefix: 'big:' })
  await store.set('live', 'v', { tags: ['big'], ttlMs: 60_000 })
  // As a tag's set grew before sets were pruned: members whose keys are long gone.
  await raw.sadd('big:tag:{big}', ...Array.from({ length: 5_000 }, (_, i) => `big:gone-${i}`))
  const monitor = await redis.monitor()
  t.teardown(() => monitor.close())
  t.equal(await store.deleteTag('big'), 1, 'the live key is deleted')
  await raw.echo('purged')
  t.ok(await until(() => monitor.commands.includes('echo')), 'the monitor has seen every command')
  // One GET per member (its tag record): 200 at most before the batch is done and the next is read.
  let run = 0
  let longest = 0
  for (const c of monitor.commands) longest = Math.max(longest, run = c === 'get' ? run + 1 : 0)
  t.ok(longest <= 200, `at most 200 GETs in a row (${longest})`)
  t.equal(await raw.exists('big:live', 'big:tag:{big}', 'big:tag:{big}:purge'), 0, 'nothing left')
})

/** A proxy to `redis` that drops the connection (both ways) when the client sends its `nth` SRANDMEMBER: a server lost in the middle of a purge. */
const droppingProxy = (t: Test, nth: number): Promise<number> => srandmemberCutProxy(t, redis.port, nth, (client, upstream) => { client.destroy(); upstream.destroy() })

t.test('redis: a purge lost midway has deleted its first batches, and says how many; the next one deletes the rest', async t => {
  const storing = await upStore(t, { keyPrefix: 'half:' })
  await many(1_000, i => storing.set(`k${i}`, 'v', { tags: ['t'], ttlMs: 60_000 }))
  const purging = await upStore(t, { keyPrefix: 'half:', url: `redis://127.0.0.1:${await droppingProxy(t, 3)}` })
  await t.rejects(purging.deleteTag('t'), { code: 'STORE_UNAVAILABLE', deleted: 400 }, 'the purge fails at its third batch, the keys it deleted counted')
  t.equal(await raw.scard('half:tag:{t}:purge'), 600, 'two batches of 200 done, and taken out of the purge set')
  t.equal(await storing.deleteTag('t'), 600, 'the next purge deletes the rest')
  t.same(await raw.keys('half:*'), [], 'every key and tag set is gone')
})

t.test('memory: expired entries among a tag\'s keys go as later keys are set with the tag, with their other tags', async t => {
  const store = new MemoryStore('m')
  t.teardown(() => store.close())
  await many(100, i => store.set(`/flood?_=${i}`, 'v', { tags: ['u:/flood', `own-${i}`], ttlMs: 20 }))
  await store.set('probe', 'p', { ttlMs: 20 })
  // Set after them with the same TTL: once it has expired, they have.
  await eventually(async () => (await store.get('probe'))?.toString(), undefined)
  for (let i = 100; i < 150; i++) await store.set(`/flood?_=${i}`, 'v', { tags: ['u:/flood'], ttlMs: 60_000 })
  t.match(store.snapshot(), { entries: 50, tags: 1 }, 'the expired entries are gone, and their tags')
  t.equal(await store.deleteTag('u:/flood'), 50)
  t.match(store.snapshot(), { entries: 0, tags: 0 })
})
