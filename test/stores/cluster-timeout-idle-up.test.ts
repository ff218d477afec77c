import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { startCluster } from '../helpers/redis.ts'
import { callUntil, until } from '../helpers/wait.ts'

// Cluster: every node frozen for less than socketTimeout, calls timing out, the store is down. Its
// connections are kept (no reconnect of the store's own on Cluster, no `ready` again): with no call
// after, only its own check, a PING to every master, brings it up once they answer.

const cluster = await startCluster(3)
t.teardown(() => cluster.close())

t.test('all nodes frozen briefly: down for timeouts, up with no call once they answer (a PING 5 s after)', async t => {
  const states: Array<StoreSnapshot['state']> = []
  let calls = 0
  let up: (at: number) => void = () => {}
  const upAgain = new Promise<number>(resolve => { up = resolve })
  const events: RedisStoreEvents = { state (_s, state) { if (state === 'up' && states.includes('down')) up(performance.now()); states.push(state) }, failed () {}, command () { calls++ } }
  // socketTimeout 10 x 400 ms: the freeze below ends before it drops a connection, with a margin for a loaded machine.
  const store = new RedisStore('frozen', { cluster: cluster.nodes.map(n => n.address), keyPrefix: 'ct:', connectTimeout: 2_000, commandTimeout: 400 }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'up')
  t.equal(await store.get('k'), undefined, 'answered before')
  let frozen = true
  const thaw = () => { if (frozen) { frozen = false; for (const n of cluster.nodes) process.kill(n.pid!, 'SIGCONT') } }
  t.teardown(thaw)
  for (const n of cluster.nodes) process.kill(n.pid!, 'SIGSTOP')
  const sent: Array<Promise<unknown>> = []
  t.ok(await callUntil(() => { const call = store.get('k'); sent.push(call); return call }, () => store.snapshot().state === 'down', 5_000), 'down once calls have timed out for a second')
  const down = performance.now()
  // Thawed sooner, the nodes would answer the last calls in time.
  await Promise.allSettled(sent)
  thaw()
  const made = calls
  const at = await Promise.race([upAgain, new Promise<undefined>(resolve => setTimeout(() => resolve(undefined), 12_000).unref())])
  t.ok(at !== undefined, 'up with no call')
  t.equal(calls, made, 'no call made')
  t.ok(at! - down >= 4_500, `at the check 5 s after it went down (${Math.round(at! - down)} ms)`)
  t.same(states, ['up', 'down', 'up'])
  t.equal(store.snapshot().lastError, null)
  t.equal(await store.get('k'), undefined, 'calls answered')
})
