import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { startSentinel } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'
import { counter, eventually, storeCases } from './store-cases.ts'

const ha = await startSentinel('mymaster')
t.teardown(() => ha.close())
const states: Array<StoreSnapshot['state']> = []
const events: RedisStoreEvents = { state (_s, state) { states.push(state) }, failed () {}, command () {} }
const store = new RedisStore('ha', { sentinels: [ha.sentinel.address], name: 'mymaster', keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 500 }, events)
t.teardown(() => store.close())
t.ok(await until(() => store.snapshot().state === 'up'), 'connected to the primary the sentinel names')

t.test('the shared store cases, through Sentinel', async t => {
  storeCases(t, () => store, 's:')
})

t.test('a failover in the middle: the store follows the new primary', async t => {
  t.equal(await store.run(counter, ['{f}:n'], [0]), 1)
  t.equal(await store.run(counter, ['{f}:n'], [0]), 2)
  await store.set('before', 'failover')
  // The replica has everything written so far before the primary goes.
  t.equal(await eventually(async () => await ha.replica.cli('GET', 'pc:before'), 'failover'), 'failover')
  await ha.primary.kill()
  t.ok(await until(() => store.snapshot().state === 'down'), 'down while the primary is gone')
  await t.rejects(store.get('before'), 'calls fail fast meanwhile, they do not queue')
  // The sentinel needs down-after (1 s) plus an election to promote the replica.
  const promoted = await eventually(async () => (await ha.sentinel.cli('SENTINEL', 'get-master-addr-by-name', 'mymaster')).split('\n')[1], String(ha.replica.port), 15_000)
  t.equal(promoted, String(ha.replica.port), 'the sentinel promoted the replica')
  const read = async () => { try { return (await store.get('before'))?.toString() } catch { return undefined } }
  t.equal(await eventually(read, 'failover', 10_000), 'failover', 'the store reads from the new primary')
  t.equal(store.snapshot().state, 'up')
  t.equal(await store.run(counter, ['{f}:n'], [0]), 3, 'and writes to it: the counter carried over')
  t.equal(await ha.replica.cli('GET', 'pc:{f}:n'), '3', 'on the former replica')
  t.same(states.slice(-2), ['down', 'up'])
})
