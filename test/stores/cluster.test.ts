import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { defineScript } from '../../src/stores/store.ts'
import { startCluster } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'
import { counter, storeCases, swap } from './store-cases.ts'

const cluster = await startCluster(3)
t.teardown(() => cluster.close())
const quiet: RedisStoreEvents = { state () {}, failed () {}, command () {} }
const store = new RedisStore('big', { cluster: [cluster.nodes[0]?.address as string], keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 1_000 }, quiet)
t.teardown(() => store.close())
t.ok(await until(() => store.snapshot().state === 'up'), 'connected to the cluster')

/** How many keys each master holds (DBSIZE), in node order. */
const sizes = async () => await Promise.all(cluster.nodes.map(async n => Number(await n.cli('DBSIZE'))))

t.test('the shared store cases, on a three-master cluster', async t => {
  storeCases(t, () => store, 'c:')
})

t.test('keys spread over every master: set, get, delete and deletePrefix reach them all', async t => {
  for (let i = 0; i < 60; i++) await store.set(`spread:${i}`, String(i))
  const spread = await sizes()
  t.ok(spread.every(n => n >= 5), `every master holds some of the keys (${spread.join(', ')})`)
  for (const i of [0, 17, 42, 59]) t.equal((await store.get(`spread:${i}`))?.toString(), String(i))
  t.equal(await store.delete('spread:0', 'spread:17', 'spread:42'), 3, 'one delete across slots')
  t.equal(await store.deletePrefix('spread:'), 57, 'deletePrefix scanned every master')
  const left = await Promise.all(cluster.nodes.map(async n => await n.cli('--scan', '--pattern', 'pc:spread:*')))
  t.same(left, ['', '', ''], 'no master has any left')
})

t.test('a script with hash-tagged keys runs in one slot; keys without a shared tag are refused by Redis', async t => {
  t.equal(await store.run(counter, ['{acme}:burst'], [60_000]), 1)
  t.equal(await store.run(counter, ['{acme}:burst'], [60_000]), 2)
  await store.set('{acme}:a', 'x')
  t.same(await store.run(swap, ['{acme}:a', '{acme}:b'], []), ['x', '', 2])
  await t.rejects(store.run(swap, ['left-7', 'right-3'], []), /CROSSSLOT|same slot/i, 'keys in two slots: a clear error')
})

t.test('a call whose keys span slots fails alone: the calls made in the same turn get their own results', async t => {
  const two = defineScript<number>({ name: 'test-two-keys', lua: "redis.call('INCR', KEYS[1]) return #KEYS", local: (_data, keys) => keys.length })
  const settled = await Promise.allSettled([
    store.run(two, ['{a}:1', '{b}:2'], []),
    store.run(two, ['{a}:3'], []),
    store.run(two, ['{q}:1'], []),
    store.run(two, ['{q}:2', 'plain'], []),
    store.run(two, ['{q}:5', '{q}:6'], []),
    store.run(two, ['{q}:7', 'x{q}'], [])
  ])
  t.same(settled.map(s => s.status === 'fulfilled' ? s.value : (s.reason as { code: string, message: string }).message.split(' ')[0]),
    ['CROSSSLOT', 1, 1, 'CROSSSLOT', 2, 2], 'only the calls whose keys span slots fail')
  t.match(settled[0], { reason: { code: 'STORE_SCRIPT_ERROR' } })
})

t.test('concurrent calls are batched per hash tag: one command per tag, each on its own master', async t => {
  const tags = ['north', 'south', 'east', 'west', 'up', 'down']
  for (const tag of tags) t.equal(await store.run(counter, [`{${tag}}:n`], [0]), 1, `{${tag}} loaded`)
  for (const n of cluster.nodes) await n.cli('CONFIG', 'RESETSTAT')
  const counts = await Promise.all(tags.flatMap(tag => Array.from({ length: 5 }, () => store.run(counter, [`{${tag}}:n`], [0]))))
  t.same(counts, tags.flatMap(() => [2, 3, 4, 5, 6]), 'each tag counted on its own')
  const stats = await Promise.all(cluster.nodes.map(async n => Number(/cmdstat_evalsha:calls=(\d+)/.exec(await n.cli('INFO', 'commandstats'))?.[1] ?? 0)))
  t.equal(stats.reduce((a, b) => a + b, 0), tags.length, `thirty calls, one EVALSHA per tag (${stats.join('/')} per master)`)
  t.ok(stats.filter(n => n > 0).length >= 2, 'the tags spread over the masters')
})

t.test('deleteTag finds tagged keys on every master', async t => {
  for (let i = 0; i < 30; i++) await store.set(`page:${i}`, 'cached', { tags: ['catalog'] })
  await store.set('page:other', 'kept', { tags: ['blog'] })
  t.equal(await store.deleteTag('catalog'), 30)
  t.equal(await store.get('page:7'), undefined)
  t.equal((await store.get('page:other'))?.toString(), 'kept')
})
