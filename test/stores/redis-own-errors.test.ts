import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { redisWithClient } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'

const { redis, raw } = await redisWithClient(t)

let failed = 0
const events: RedisStoreEvents = { state () {}, failed () { failed++ }, command () {} }
const store = new RedisStore('test', { url: redis.url, keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 2_000 }, events)
t.teardown(() => store.close())
t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')

t.test('tag records that are not a list of tags: a purge by tag deletes their keys, as carrying it', async t => {
  for (const k of ['a', 'b', 'c', 'd', 'e']) await store.set(k, 'v', { tags: ['t'] })
  await store.set('other', 'v', { tags: ['u'] })
  await raw.set('pc:tag:{}pc:a', '{}')
  await raw.set('pc:tag:{}pc:b', 'not json')
  await raw.set('pc:tag:{}pc:c', '5')
  await raw.del('pc:tag:{}pc:d') // no record: evicted (a set without tags writes an empty list)
  t.equal(await store.deleteTag('t'), 5)
  t.same(await Promise.all(['a', 'b', 'c', 'd', 'e', 'other'].map(k => store.get(k))), [undefined, undefined, undefined, undefined, undefined, Buffer.from('v')])
})

t.test('an exception of the caller\'s or the store\'s own code is a store error, not the store being unavailable', async t => {
  const before = failed
  // JSON.stringify throws on a BigInt: code, not a server, failed.
  for (let i = 0; i < 4; i++) await t.rejects(store.set('k', 'v', { tags: [1n as unknown as string] }), { name: 'StoreError', code: 'STORE_ERROR', cause: TypeError })
  t.equal(failed, before + 4, 'counted as failed calls')
  t.equal(store.snapshot().state, 'up')
  t.equal(await store.get('never-set'), undefined, 'the store still answers')
})
