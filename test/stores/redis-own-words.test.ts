import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'

// What ioredis says of a call it did not send, or lost with its connection, names its options
// (enableOfflineQueue, maxRetriesPerRequest): the store says it in its own words, in logs and /stores.

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())
const quiet: RedisStoreEvents = { state () {}, failed () {}, command () {} }
// Long: the calls below fail for their connection, never for a timeout.
const store = new RedisStore('words', { url: redis.url, keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 10_000 }, quiet)
t.teardown(() => store.close())
t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')

t.test('a call lost with its connection, and one made while not connected: the store\'s words, ioredis\'s error as the cause', async t => {
  // The server holds the call unanswered, then dies.
  await redis.cli('CLIENT', 'PAUSE', '30000', 'ALL')
  const lost = t.rejects(store.get('k'), { name: 'StoreError', code: 'STORE_UNAVAILABLE', message: 'connection closed before the answer', cause: { message: /^Reached the max retries per request limit/ } })
  // ioredis writes the call at setImmediate (auto-pipelining): killed sooner, the connection's end
  // could be seen first and the call never sent (store not connected).
  await new Promise(resolve => setImmediate(resolve))
  await redis.kill()
  t.teardown(() => redis.restart())
  await lost
  t.ok(await until(() => store.snapshot().state === 'down'), 'the store is down')
  await t.rejects(store.set('k', 'v'), { name: 'StoreError', code: 'STORE_UNAVAILABLE', message: 'store not connected', cause: { message: /^Stream isn't writeable/ } })
})

t.test('a Cluster store without its slot map (no seed node answers): store not connected', async t => {
  // Port 1: nothing listens there.
  const cluster = new RedisStore('cluster', { cluster: ['127.0.0.1:1'], keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 10_000 }, quiet)
  t.teardown(() => cluster.close())
  await cluster.settled()
  await t.rejects(cluster.get('k'), { code: 'STORE_UNAVAILABLE', message: 'store not connected', cause: { message: /^Cluster isn't ready/ } })
})

t.test('a call made while the store reconnects up (its URL names a replica): lastError in the store\'s words', async t => {
  const replica = await RedisProcess.start()
  t.teardown(() => replica.stop())
  const up = new RedisStore('replica', { url: replica.url, keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 10_000 }, quiet)
  t.teardown(() => up.close())
  t.ok(await until(() => up.snapshot().state === 'up'), 'the store connected')
  await replica.cli('REPLICAOF', '127.0.0.1', '1')
  // READONLY: the store drops its connection for a new one, staying up (a replica answers reads).
  await t.rejects(up.set('k', 'v'), { code: 'STORE_UNAVAILABLE', message: /^READONLY/ })
  await t.rejects(up.get('k'), { code: 'STORE_UNAVAILABLE', message: 'store not connected' })
  t.match(up.snapshot(), { state: 'up', lastError: 'store not connected' })
})
