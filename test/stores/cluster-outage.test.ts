import t, { type Test } from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { defineScript, type StoreSnapshot } from '../../src/stores/store.ts'
import { partitionProxy } from '../helpers/partition-proxy.ts'
import { startCluster, type RedisProcess } from '../helpers/redis.ts'
import { callUntil, until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

const cluster = await startCluster(3)
t.teardown(() => cluster.close())
const [first, second, third] = cluster.nodes as [RedisProcess, RedisProcess, RedisProcess]
// No node is failed by the others while a test stops one: no failover, the other slots stay served.
await Promise.all(cluster.nodes.map(n => n.cli('CONFIG', 'SET', 'cluster-node-timeout', '60000')))

/** Restarts a killed node (empty: no persistence; its slots from its nodes.conf), once every node says the cluster is ok. */
async function restart (node: RedisProcess): Promise<void> {
  await node.restart()
  await node.cli('CONFIG', 'SET', 'cluster-node-timeout', '60000')
  for (let i = 0; i < 400 && !(await Promise.all(cluster.nodes.map(n => n.cli('CLUSTER', 'INFO')))).every(s => s.includes('cluster_state:ok')); i++) {
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

const admin = first.client()
t.teardown(() => admin.quit())
const ranges = await admin.call('CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>

const slotOf = async (key: string) => Number(await admin.call('CLUSTER', 'KEYSLOT', key))

/** A hash tag whose keys `node` holds. */
async function tagOn (node: RedisProcess): Promise<string> {
  for (let i = 0; ; i++) {
    const slot = await slotOf(`{n${i}}`)
    if (ranges.some(([from, to, [, port]]) => port === node.port && slot >= from && slot <= to)) return `{n${i}}`
  }
}

/** A store on the cluster, closed at teardown, once up; its node reports in `nodes`. */
async function upStore (t: Test, commandTimeout: number): Promise<{ store: RedisStore, nodes: Array<[string, string | null]>, states: Array<StoreSnapshot['state']> }> {
  const nodes: Array<[string, string | null]> = []
  const states: Array<StoreSnapshot['state']> = []
  const events: RedisStoreEvents = { state (_s, state) { states.push(state) }, failed () {}, command () {}, node (_s, node, error) { nodes.push([node, error]) } }
  const store = new RedisStore('outage', { cluster: [first.address], keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'connected to the cluster')
  return { store, nodes, states }
}

/** `counter` at `key` once it answers: one call may outlast a short commandTimeout on a loaded machine. */
async function warm (store: RedisStore, key: string): Promise<number | undefined> {
  let value: number | undefined
  await callUntil(async () => { value = await store.run(counter, [key], [0]) }, () => value !== undefined, 5_000)
  return value
}

/** The counter at `key` as the node holding it has it (0 when absent). */
const count = async (node: RedisProcess, key: string) => Number(await node.cli('GET', `pc:${key}`))

t.test('a killed master: calls for its keys fail at once, not after resends', async t => {
  // Resends (~100 ms apart, up to 16) would take a call to commandTimeout; a failure at once stays far below it on a loaded machine.
  const commandTimeout = 1_000
  const { store } = await upStore(t, commandTimeout)
  const tag = await tagOn(second)
  const elsewhere = `${await tagOn(first)}:n`
  t.ok(await warm(store, `${tag}:warm`), 'the master reached')
  await second.kill()
  t.teardown(() => restart(second))
  let slowest = 0
  const calls: Array<Promise<boolean>> = []
  for (const start = performance.now(); performance.now() - start < 1_000;) {
    const sent = performance.now()
    calls.push(store.run(counter, [`${tag}:n`], [0]).then(() => true, () => false).then(ok => { slowest = Math.max(slowest, performance.now() - sent); return ok }))
    // The other masters' answers keep the store up.
    store.get(elsewhere).catch(() => {})
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.notOk((await Promise.all(calls)).some(ok => ok), `all ${calls.length} calls failed`)
  // ioredis would resend each every ~100 ms (retryDelayOnFailover), up to 16 times: past commandTimeout.
  t.ok(slowest < commandTimeout, `the slowest took ${Math.round(slowest)} ms (commandTimeout ${commandTimeout} ms)`)
  t.match(store.snapshot(), { state: 'up', nodesDown: [{ node: second.address, error: /ECONNREFUSED/ }] }, 'the node is shown unreachable, the store up')
})

t.test('calls that timed out are not resent when their connection closes', async t => {
  // The store reaches the node through a proxy: the node announces the proxy's port to clients.
  const proxy = await partitionProxy(t, second.port)
  const announced = async (port: number) => {
    await second.cli('CONFIG', 'SET', 'cluster-announce-port', String(port))
    for (let i = 0; i < 400 && !(await Promise.all(cluster.nodes.map(n => n.cli('CLUSTER', 'NODES')))).every(s => s.includes(`127.0.0.1:${port}@`)); i++) {
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }
  await announced(proxy.port)
  t.teardown(() => announced(second.port))
  const { store } = await upStore(t, 500)
  const tag = await tagOn(second)
  const key = `${tag}:n`
  t.ok(await warm(store, `${tag}:warm`), 'the master reached')
  proxy.partition()
  const calls: Array<Promise<unknown>> = []
  for (let i = 0; i < 10; i++) {
    calls.push(store.run(counter, [key], [0]).then(() => 'answered', (err: Error) => err.message))
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  t.same(new Set(await Promise.all(calls)), new Set(['Command timed out']), 'all timed out')
  // What they sent is dropped with the connection: only a resend would reach the node. ioredis would
  // resend each call queued on it every ~100 ms (retryDelayOnFailover), up to 16 times.
  proxy.cut()
  let back = false
  t.ok(await callUntil(async () => { await store.get(`${tag}:warm`); back = true }, () => back, 10_000), 'the store reaches the master again')
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(await count(second, key), 0, 'no failed call ran')
})

t.test('a frozen master: its connection is dropped after socketTimeout, the node reported unreachable, the store up; back when it answers', async t => {
  const { store, nodes, states } = await upStore(t, 250)
  const tag = await tagOn(third)
  const key = `${tag}:n`
  const elsewhere = `${await tagOn(first)}:n`
  t.ok(await warm(store, `${tag}:warm`), 'the master reached')
  const pid = third.pid as number
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  let sent = 0
  let succeeded = 0
  const both = async () => {
    sent++
    await Promise.all([store.run(counter, [key], [0]).then(() => { succeeded++ }), store.run(counter, [elsewhere], [0])])
  }
  const unreachable = () => nodes.some(([node]) => node === third.address)
  const started = performance.now()
  t.ok(await callUntil(both, unreachable, 6_000), 'the node is reported unreachable')
  t.ok(performance.now() - started >= 2_400, 'after socketTimeout (2.5 s: 10 × commandTimeout)')
  t.match(nodes[0], [third.address, /Socket timeout/])
  t.match(store.snapshot(), { state: 'up', nodesDown: [{ node: third.address, error: /Socket timeout/ }] }, 'shown by GET /stores; the store stays up')
  t.ok(await warm(store, elsewhere), 'the other masters answer')
  // Calls go on for as long again: without the drop, every one of them would be sent to the frozen node, and run once it is back.
  const dropped = sent
  t.ok(await callUntil(both, () => sent >= 2 * dropped, 15_000), 'as many calls again after the drop')
  resume()
  let back = false
  t.ok(await callUntil(async () => { await store.run(counter, [key], [0]); back = true }, () => back && store.snapshot().nodesDown?.length === 0, 10_000), 'calls for its keys succeed again')
  t.same(nodes.map(([node, error]) => [node, error === null]), [[third.address, false], [third.address, true]], 'unreachable then back, each reported once')
  t.same(states, ['up'], 'the store stayed up')
  const late = await count(third, key) - succeeded - 1
  t.ok(late < sent * 0.75, `${late} of ${sent} calls sent while it was frozen ran once it was back: not those after the drop`)
})

t.test('TRYAGAIN (a multi-key call during a slot migration) fails at once as unavailable, and is not resent', async t => {
  // Long: a call that failed at once stays far below it on a loaded machine (and never times out).
  const commandTimeout = 5_000
  const { store } = await upStore(t, commandTimeout)
  const incr = defineScript<number>({ name: 'test-incr-first', lua: "return redis.call('INCR', KEYS[1])", local: () => 0 })
  const tag = await tagOn(first)
  const [a, b] = [`${tag}:a`, `${tag}:b`]
  t.equal(await store.run(incr, [a, b], []), 1, 'loaded')
  const slot = String(await slotOf(tag))
  const [source, target] = await Promise.all([first.cli('CLUSTER', 'MYID'), second.cli('CLUSTER', 'MYID')])
  await second.cli('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source)
  await first.cli('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target)
  t.teardown(async () => { await first.cli('CLUSTER', 'SETSLOT', slot, 'STABLE'); await second.cli('CLUSTER', 'SETSLOT', slot, 'STABLE') })
  const started = performance.now()
  // `a` is on the source, `b` on neither: Redis cannot tell where the call belongs.
  await t.rejects(store.run(incr, [a, b], []), { code: 'STORE_UNAVAILABLE', message: /^TRYAGAIN/ })
  const ms = performance.now() - started
  t.ok(ms < commandTimeout / 2, `at once, not after commandTimeout (${Math.round(ms)} ms)`)
  t.match(store.snapshot(), { state: 'up', lastError: /^TRYAGAIN/ })
  await first.cli('CLUSTER', 'SETSLOT', slot, 'STABLE')
  await second.cli('CLUSTER', 'SETSLOT', slot, 'STABLE')
  // A resend would come within ~100 ms (retryDelayOnTryAgain), and succeed now.
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(await count(first, a), 1, 'the failed call never ran')
})
