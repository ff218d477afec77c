import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'

t.test('a store going down gives the connection\'s reason, not an earlier call\'s answered error (WRONGTYPE)', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const downs: Array<string | null> = []
  const events: RedisStoreEvents = { state (_s, state, error) { if (state === 'down') downs.push(error) }, failed () {}, command () {} }
  const store = new RedisStore('reason', { url: redis.url, keyPrefix: 'r:', connectTimeout: 1_000, commandTimeout: 1_000 }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'up')
  await redis.cli('HSET', 'r:k', 'f', 'v')
  await t.rejects(store.get('k'), { message: /WRONGTYPE/ }, 'an answered error')
  t.match(store.snapshot(), { state: 'up', lastError: /WRONGTYPE/ }, 'shown while up (the last failed call\'s error), but no reason to be down')
  await redis.kill()
  t.ok(await until(() => store.snapshot().state === 'down'), 'down once the server is killed')
  t.notMatch(store.snapshot().lastError, /WRONGTYPE/, 'the reason is the connection\'s')
  t.notMatch(downs[0], /WRONGTYPE/, 'as logged')
})
