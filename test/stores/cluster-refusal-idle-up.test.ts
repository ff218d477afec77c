import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { startCluster, type RedisProcess } from '../helpers/redis.ts'
import { REFUSALS } from '../helpers/redis-refusals.ts'
import { callUntil, until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

// Cluster: the calls made, all for one master's keys, are refused (BUSY) and the store is down. Its own
// check, no call made, PINGs every master: one answered by another node is no sign that the busy
// one is over. Up once it is.

const cluster = await startCluster(3)
t.teardown(() => cluster.close())
const [first, second] = cluster.nodes as [RedisProcess, RedisProcess]
// The busy node is not failed by the others meanwhile (cluster_state:fail: CLUSTERDOWN everywhere).
await Promise.all(cluster.nodes.map(n => n.cli('CONFIG', 'SET', 'cluster-node-timeout', '60000')))

const admin = first.client()
t.teardown(() => admin.quit())
const ranges = await admin.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>

/** A hash tag whose keys `node` holds. */
async function tagOn (node: RedisProcess): Promise<string> {
  for (let i = 0; ; i++) {
    const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', `{n${i}}`))
    if (ranges.some(([from, to, [, port]]) => port === node.port && slot >= from && slot <= to)) return `{n${i}}`
  }
}

t.test('a master busy: down with every call refused; its check no sign while that master refuses the PING; up with no call once it is over', async t => {
  const states: Array<StoreSnapshot['state']> = []
  /** When it was up again after down. */
  let upAt: number | undefined
  const events: RedisStoreEvents = { state (_s, state) { if (state === 'up' && states.includes('down')) upAt = performance.now(); states.push(state) }, failed () {}, command () {} }
  const store = new RedisStore('busy', { cluster: [first.address], keyPrefix: 'cb:', connectTimeout: 2_000, commandTimeout: 2_000 }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'up')
  const key = `${await tagOn(second)}:n`
  t.equal(await store.run(counter, [key], [0]), 1, 'the busy node\'s key answered before')
  const end = await REFUSALS.find(r => r.reply === 'BUSY')!.start(second)
  t.ok(await callUntil(() => store.run(counter, [key], [0]), () => store.snapshot().state === 'down', 5_000), 'down')
  const down = performance.now()
  // The check's PING reaches the other masters too (INFO is refused by the busy one).
  const pings = async () => Number(/^cmdstat_ping:calls=(\d+)/m.exec(await first.cli('INFO', 'commandstats'))?.[1] ?? 0)
  t.equal(await pings(), 0, 'no PING yet')
  t.ok(await until(() => performance.now() - down > 4_000, 5_000), 'nearly 5 s down')
  let checked = false
  for (const started = performance.now(); !checked && performance.now() - started < 5_000;) {
    checked = await pings() > 0
    if (!checked) await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(checked, 'checked: the other masters PINGed')
  // Its answer in: the busy master's BUSY is at once.
  t.ok(await until(() => performance.now() - down > 6_000, 7_000), 'past the check')
  t.same(states, ['up', 'down'], 'down still: the busy master refused the PING')
  await end()
  t.ok(await until(() => upAt !== undefined, 12_000), 'up with no call, at the next check')
  t.ok(upAt! - down >= 14_000, `15 s after it went down (${Math.round(upAt! - down)} ms)`)
  t.same(states, ['up', 'down', 'up'])
  t.equal(await store.run(counter, [key], [0]), 2, 'calls answered')
})
