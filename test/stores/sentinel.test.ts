import t, { type Test } from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { type RedisProcess, startSentinel, startSentinelFor } from '../helpers/redis.ts'
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

/** A store on a sentinel setup of its own, its state changes and failed calls recorded; closed at teardown, once up. */
async function storeOn (t: Test, sentinels: string[], name: string): Promise<{ store: RedisStore, states: Array<[StoreSnapshot['state'], string | null]>, failed: { n: number } }> {
  const states: Array<[StoreSnapshot['state'], string | null]> = []
  const failed = { n: 0 }
  // commandTimeout: a call timed out on a busy machine would leave its error in lastError, or fail instead of READONLY.
  const store = new RedisStore(name, { sentinels, name, keyPrefix: 'pc:', connectTimeout: 1_000, commandTimeout: 1_000 }, { state (_s, state, error) { states.push([state, error]) }, failed () { failed.n++ }, command () {} })
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'connected to the primary the sentinel names')
  return { store, states, failed }
}

/** The port of the primary the sentinel names, once it is `port` (or after 10 s). */
const primaryPort = async (sentinel: RedisProcess, name: string, port: number) =>
  await eventually(async () => (await sentinel.cli('SENTINEL', 'get-master-addr-by-name', name)).split('\n')[1], String(port), 10_000)

t.test('a failover: the store leaves the old primary when a sentinel announces it, not when the old primary is demoted', async t => {
  const ha = await startSentinel('fo')
  t.teardown(() => ha.close())
  const { store, states } = await storeOn(t, [ha.sentinel.address], 'fo')
  t.equal(await store.run(counter, ['{fo}:n'], [0]), 1)
  t.equal(await eventually(async () => await ha.replica.cli('GET', 'pc:{fo}:n'), '1'), '1', 'replicated')
  // Calls all along: one failing between the announcement and the reconnect must not hide its reason.
  let calling = true
  const calls = Promise.all(Array.from({ length: 8 }, async () => {
    while (calling) {
      await store.run(counter, ['{fo}:calls'], [0]).catch(() => undefined)
      await new Promise(resolve => setImmediate(resolve))
    }
  }))
  t.equal(await ha.sentinel.cli('SENTINEL', 'failover', 'fo'), 'OK')
  t.equal(await primaryPort(ha.sentinel, 'fo', ha.replica.port), String(ha.replica.port), 'the sentinel promoted the replica')
  // The old primary takes writes until the sentinel demotes it, some 10 s later: a store still on it counts there, for nothing.
  const started = performance.now()
  const landed = async () => {
    await store.run(counter, ['{fo}:after'], [0]).catch(() => undefined)
    return await ha.replica.cli('GET', 'pc:{fo}:after') !== ''
  }
  t.ok(await eventually(landed, true, 3_000), `counted on the new primary ${Math.round(performance.now() - started)} ms after the switch`)
  calling = false
  await calls
  t.equal(await store.run(counter, ['{fo}:n'], [0]), 2, 'the count carried over')
  t.equal(await ha.replica.cli('GET', 'pc:{fo}:n'), '2', 'on the new primary')
  t.same(states.slice(-2).map(([s]) => s), ['down', 'up'], 'a brief reconnect')
  t.match(states.at(-2)?.[1], /failover announced by sentinel .*\+switch-master fo /, 'logged with its reason')
  t.equal(store.snapshot().lastError, null, 'up again: no error left from the reconnect ("All sentinels are unreachable")')
})

t.test('a primary demoted under the store: a READONLY reply inside a script batch makes it reconnect to the new one', async t => {
  const ha = await startSentinel('ro')
  t.teardown(() => ha.close())
  const { store, failed } = await storeOn(t, [ha.sentinel.address], 'ro')
  t.equal(await store.run(counter, ['{ro}:n'], [0]), 1)
  t.equal(await eventually(async () => await ha.replica.cli('GET', 'pc:{ro}:n'), '1'), '1', 'replicated')
  // Roles swapped with no failover announced and no connection closed, as an operator may do.
  await ha.replica.cli('REPLICAOF', 'NO', 'ONE')
  await ha.primary.cli('REPLICAOF', '127.0.0.1', String(ha.replica.port))
  await ha.sentinel.cli('SENTINEL', 'REMOVE', 'ro')
  await ha.sentinel.cli('SENTINEL', 'MONITOR', 'ro', '127.0.0.1', String(ha.replica.port), '1')
  await t.rejects(store.run(counter, ['{ro}:n'], [0]), /^READONLY/, 'the demoted primary refuses the write')
  t.ok(failed.n >= 1, 'counted as a failed call')
  const count = async () => { try { return await store.run(counter, ['{ro}:n'], [0]) } catch { return undefined } }
  t.equal(await eventually(count, 2, 5_000), 2, 'then counts on the new primary')
  t.equal(await ha.replica.cli('GET', 'pc:{ro}:n'), '2')
  t.equal(store.snapshot().state, 'up')
})

t.test('a sentinel that accepts connections but never answers: down after connectTimeout, and the next sentinel is asked', async t => {
  const ha = await startSentinel('frozen')
  const second = await startSentinelFor(ha.primary, 'frozen')
  const pid = ha.sentinel.pid as number
  process.kill(pid, 'SIGSTOP')
  const quiet: RedisStoreEvents = { state () {}, failed () {}, command () {} }
  const alone = new RedisStore('alone', { sentinels: [ha.sentinel.address], name: 'frozen', keyPrefix: 'pc:', connectTimeout: 300, commandTimeout: 100 }, quiet)
  const both = new RedisStore('both', { sentinels: [ha.sentinel.address, second.address], name: 'frozen', keyPrefix: 'pc:', connectTimeout: 300, commandTimeout: 100 }, quiet)
  t.teardown(async () => {
    process.kill(pid, 'SIGCONT')
    await Promise.all([alone.close(), both.close()])
    await Promise.all([second.stop(), ha.close()])
  })
  await alone.settled()
  t.ok(await until(() => alone.snapshot().state === 'down', 1_000), 'down, not connecting forever')
  t.match(alone.snapshot().lastError, /timed out|connectTimeout/, 'with the reason')
  t.ok(await until(() => both.snapshot().state === 'up', 10_000), 'with a second sentinel: it names the primary')
  await both.set('k', 'v')
  t.equal(await ha.primary.cli('GET', 'pc:k'), 'v')
})
