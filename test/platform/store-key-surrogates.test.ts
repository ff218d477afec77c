import t, { type Test } from 'tap'
import { MemoryStore } from '../../src/stores/memory-store.ts'
import { RedisStore } from '../../src/stores/redis-store.ts'
import type { Store } from '../../src/stores/store.ts'
import { redisWithClient } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'
import { counter } from '../stores/store-cases.ts'

// A lone UTF-16 surrogate (a JWT claim may hold one: "\ud800") has no UTF-8: ioredis sent U+FFFD for
// each, so 'sur\ud800' and 'sur\udfff' were one Redis key (one rate-limit counter), two on memory.

const { redis, raw } = await redisWithClient(t)

const HIGH = 'sur\ud800'
const LOW = 'sur\udfff'
const PAIR = 'sur\ud83d\ude00'
const REPLACED = 'sur\ufffd'

async function distinctKeys (t: Test, store: Store): Promise<void> {
  const keys = [HIGH, LOW, PAIR, REPLACED]
  for (const [i, k] of keys.entries()) await store.set(k, `v${i}`)
  t.same(await Promise.all(keys.map(async k => (await store.get(k))?.toString())), ['v0', 'v1', 'v2', 'v3'], 'get: each key its own value')
  t.same([await store.run(counter, ['n\ud800'], [0]), await store.run(counter, ['n\udfff'], [0]), await store.run(counter, ['n\ud800'], [0])], [1, 1, 2],
    'run: a counter per key')
  await store.set('tagged-1', 'a', { tags: ['t\ud800'] })
  await store.set('tagged-2', 'b', { tags: ['t\udfff'] })
  t.equal(await store.deleteTag('t\ud800'), 1, 'deleteTag: the tag\'s key only')
  t.equal((await store.get('tagged-2'))?.toString(), 'b')
  t.equal(await store.delete(HIGH), 1)
  t.equal((await store.get(LOW))?.toString(), 'v1', 'delete: the key only')
  t.equal(await store.deletePrefix('sur\udfff'), 1, 'deletePrefix: what starts with it')
  t.equal((await store.get(PAIR))?.toString(), 'v2')
}

t.test('memory: keys with lone surrogates stay distinct', async t => {
  const store = new MemoryStore('memory')
  t.teardown(() => store.close())
  await distinctKeys(t, store)
})

t.test('redis: the same answers, each lone surrogate escaped as U+FFFD and its code unit in hex', async t => {
  const store = new RedisStore('r', { url: redis.url, keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 2_000 }, { state () {}, failed () {}, command () {} })
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  await distinctKeys(t, store)
  t.equal(await raw.get('pc:sur\ufffddfff'), null, 'deleted under its escaped name')
  await store.set(LOW, 'again')
  t.equal(await raw.get('pc:sur\ufffddfff'), 'again', 'the key as Redis holds it')
  t.equal(await raw.get('pc:sur\ud83d\ude00'), 'v2', 'a well-formed key as it is')
})
