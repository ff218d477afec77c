import t, { type Test } from 'tap'
import { RedisStore, type RedisStoreEvents, type RedisStoreSettings } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { partitionProxy } from '../helpers/partition-proxy.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { callUntil, until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

/** A store's state changes and replica notices, as the registry would log them. */
interface Seen { states: Array<[StoreSnapshot['state'], string | null]>, replica: number }

/** A RedisStore on `url`, closed at teardown, once it is up; what it reports goes to `seen`. */
async function upStore (t: Test, url: string, settings: Partial<RedisStoreSettings> = {}): Promise<{ store: RedisStore, seen: Seen }> {
  const seen: Seen = { states: [], replica: 0 }
  const events: RedisStoreEvents = { state (_s, state, error) { seen.states.push([state, error]) }, failed () {}, command () {}, replica () { seen.replica++ } }
  const store = new RedisStore('stall', { url, keyPrefix: 'st:', connectTimeout: 1_000, commandTimeout: 100, ...settings }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return { store, seen }
}

/**
 * `call` until it succeeds, for at most 5 s: a step the test needs done, which the stall tests'
 * commandTimeout of 100 ms can fail once on a loaded machine (Redis is another process).
 */
async function done<T> (call: () => Promise<T>): Promise<T> {
  for (const start = performance.now(); ;) {
    try { return await call() } catch (err) { if (performance.now() - start >= 5_000) throw err }
  }
}

/** A real server of the test's own, stopped at teardown. */
async function server (t: Test): Promise<RedisProcess> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  return redis
}

t.test('a connection that stops carrying anything is dropped once the store is judged down, and a new one made', async t => {
  const redis = await server(t)
  const proxy = await partitionProxy(t, redis.port)
  const { store, seen } = await upStore(t, `redis://127.0.0.1:${proxy.port}`)
  await done(() => store.set('k', 'before'))
  t.equal(proxy.accepted(), 1)
  proxy.partition()
  t.ok(await callUntil(() => store.get('k'), () => store.snapshot().state === 'down', 5_000), 'down once calls have failed for a second')
  t.match(store.snapshot().lastError, /timed out/i)
  // Without a new connection the kernel would keep the dead one for many minutes.
  t.ok(await callUntil(() => store.get('k'), () => store.snapshot().state === 'up', 10_000), 'up again on a new connection')
  // One new connection; on a loaded machine a call over the 100 ms timeout may have judged it stalled too: no more than that.
  t.ok(proxy.accepted() >= 2 && proxy.accepted() <= 4, `a new connection (${proxy.accepted() - 1} made)`)
  t.equal((await done(() => store.get('k')))?.toString(), 'before', 'calls succeed')
  await done(() => store.set('k', 'after'))
  t.equal(await redis.cli('GET', 'st:k'), 'after')
  t.same(seen.states.map(([s]) => s), ['up', 'down', 'up'])
})

t.test('a server frozen for good: the store reconnects at its stall, not in a hot loop', async t => {
  const redis = await server(t)
  const proxy = await partitionProxy(t, redis.port)
  const { store } = await upStore(t, `redis://127.0.0.1:${proxy.port}`)
  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  t.ok(await callUntil(() => store.get('k'), () => store.snapshot().state === 'down', 5_000), 'down')
  const atDown = proxy.accepted()
  // Each new connection is accepted by the kernel but never answered; ioredis backs off (at most 2 s).
  const started = performance.now()
  await callUntil(() => store.get('k'), () => performance.now() - started > 3_000, 5_000)
  const made = proxy.accepted() - atDown
  t.ok(made >= 1 && made <= 6, `${made} new connections in 3 s: the stalled one dropped, then ioredis's backoff`)
  resume()
  t.ok(await callUntil(() => store.get('k'), () => store.snapshot().state === 'up', 10_000), 'up once the server answers again')
})

t.test('a URL naming a replica: READONLY reconnects now and then, reads go on, the store does not flap', async t => {
  const redis = await server(t)
  // No stall here: a commandTimeout no loaded machine reaches (100 ms failed the set below, and would count as READONLY's reconnects).
  const { store, seen } = await upStore(t, redis.url, { commandTimeout: 2_000 })
  await store.set('r', 'read me')
  const connections = async () => Number(/total_connections_received:(\d+)/.exec(await redis.cli('INFO', 'stats'))?.[1])
  const before = await connections()
  await redis.cli('REPLICAOF', '127.0.0.1', '1')
  let reads = 0
  let readsFailed = 0
  let writesFailed = 0
  const started = performance.now()
  await callUntil(async () => {
    await store.run(counter, ['{r}:n'], [0]).catch(() => { writesFailed++ })
    reads++
    if ((await store.get('r').catch(() => undefined))?.toString() !== 'read me') readsFailed++
  }, () => performance.now() - started > 3_000, 5_000)
  t.ok(writesFailed > 10, `writes fail (${writesFailed})`)
  // The store's connection, the redis-cli calls of this test, and at most a reconnect or two.
  const made = await connections() - before - 2
  t.ok(made <= 3, `${made} new connections from the store in 3 s`)
  t.ok(readsFailed <= reads / 5, `${readsFailed} of ${reads} reads failed`)
  t.equal(store.snapshot().state, 'up', 'up: reads are answered')
  t.ok(seen.states.filter(([s]) => s === 'down').length <= 1, `no flapping: ${seen.states.length} state changes`)
  t.equal(seen.replica, 1, 'the replica is reported once')
  await redis.cli('REPLICAOF', 'NO', 'ONE')
  let written = false
  t.ok(await callUntil(async () => { await store.run(counter, ['{r}:n'], [0]); written = true }, () => written, 10_000), 'writes work again once it is a primary')
})

t.test('lastError, while up, is the last failed call\'s error, an OOM refusal included', async t => {
  const redis = await server(t)
  const { store } = await upStore(t, redis.url, { commandTimeout: 2_000 })
  await redis.cli('CONFIG', 'SET', 'maxmemory', '1')
  await t.rejects(store.set('k', 'v'), { code: 'STORE_ERROR', message: /^OOM/ })
  t.match(store.snapshot(), { state: 'up', lastError: /^OOM command not allowed/ })
  await redis.cli('CONFIG', 'SET', 'maxmemory', '0')
  await store.set('k', 'v')
  t.match(store.snapshot(), { state: 'up', lastError: /^OOM/ }, 'kept while the store stays up')
})

t.test('a tag purge works while the server refuses writes for want of memory (deletions are allowed)', async t => {
  const redis = await server(t)
  const { store } = await upStore(t, redis.url, { commandTimeout: 2_000 })
  await store.set('a', '1', { tags: ['item-x'], ttlMs: 60_000 })
  await store.set('b', '2', { tags: ['item-x', 'other'] })
  await store.set('c', '3', { tags: ['other'] })
  // As a purge leaves it that took the tag's set, then failed: the next purge merges in a new set.
  await store.set('d', '4', { tags: ['item-y'], ttlMs: 60_000 })
  await redis.cli('RENAME', 'st:tag:{item-y}', 'st:tag:{item-y}:purge')
  await store.set('e', '5', { tags: ['item-y'] })
  await redis.cli('CONFIG', 'SET', 'maxmemory', '1')
  await t.rejects(store.set('f', '6'), { message: /^OOM/ }, 'writes are refused')
  t.equal(await store.deleteTag('item-x'), 2, 'a and b')
  t.equal(await store.deleteTag('item-y'), 2, 'd and e')
  t.same((await redis.cli('KEYS', 'st:[a-e]')).split('\n'), ['st:c'])
  t.equal(await redis.cli('EXISTS', 'st:tag:{item-x}', 'st:tag:{item-x}:purge', 'st:tag:{item-y}', 'st:tag:{item-y}:purge'), '0', 'no tag set is left')
})
