import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { startCluster } from '../helpers/redis.ts'
import { counter } from './store-cases.ts'

// A healthy cluster never turns a call away: not while the store opens its connection to each master.
const cluster = await startCluster(3)
t.teardown(() => cluster.close())

/** A fresh store on the cluster, closed at teardown; generous timeouts: a loaded machine must not fail a call. */
function freshStore (events: Partial<RedisStoreEvents> = {}): RedisStore {
  const store = new RedisStore('fresh', { cluster: [cluster.nodes[0]?.address as string], keyPrefix: 'pc:', connectTimeout: 10_000, commandTimeout: 10_000 }, { state () {}, failed () {}, command () {}, ...events })
  t.teardown(() => store.close())
  return store
}

/** Concurrent calls over keys spread across every master: each call's error message, or 'ok'. */
async function burst (store: RedisStore, name: string): Promise<string[]> {
  const calls = Array.from({ length: 30 }, async (_, i) => {
    await store.set(`${name}:${i}`, String(i))
    await store.run(counter, [`{${name}-${i}}:n`], [0])
  })
  const gets = Array.from({ length: 30 }, async (_, i) => { await store.get(`${name}:other:${i}`) })
  return (await Promise.allSettled([...calls, ...gets])).map(r => r.status === 'fulfilled' ? 'ok' : (r.reason as Error).message)
}

/** The store's connections on a node (unnamed: not the slot refresher, nor this redis-cli). */
const connections = async (port: number) => (await cluster.nodes.find(n => n.port === port)?.cli('CLIENT', 'LIST', 'TYPE', 'normal') ?? '')
  .split('\n').filter(line => / name= /.test(line) && !/ cmd=client\|list /.test(line)).length

t.test('settled: the store has a connection to every master, and a burst of calls right after all succeed', async t => {
  const store = freshStore()
  await store.settled()
  t.equal(store.snapshot().state, 'up')
  t.same(await Promise.all(cluster.nodes.map(n => connections(n.port))), [1, 1, 1], 'one connection to each master before any call')
  const results = await burst(store, 'settled')
  t.same(results.filter(r => r !== 'ok'), [], `all ${results.length} calls succeeded`)
})

t.test('calls made while the connections to the masters are being opened wait for them', async t => {
  let during: Promise<string[]> | undefined
  // At the slot map's arrival: no master's connection is ready yet.
  const store = freshStore({ state (s, state) { if (state === 'up') during ??= burst(s as RedisStore, 'opening') } })
  await store.settled()
  t.ok(during !== undefined, 'the burst was made as the store came up')
  const results = await (during as Promise<string[]>)
  t.same(results.filter(r => r !== 'ok'), [], `all ${results.length} calls succeeded`)
})

t.test('calls to a master whose connection was dropped wait for the new one', async t => {
  const store = freshStore()
  await store.settled()
  const [node] = cluster.nodes
  await node?.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  t.equal(await connections(node?.port as number), 0, 'the store\'s connection to the master is gone')
  const results = await burst(store, 'dropped')
  t.same(results.filter(r => r !== 'ok'), [], `all ${results.length} calls succeeded`)
  t.equal(await connections(node?.port as number), 1, 'a new connection')
})
