import t, { type Test } from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { RedisProcess, startCluster } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

// The gateway's own stalls, with the commands not yet written: auto-pipelines and script batches go
// out in a setImmediate, a pipeline waits for the one before it. Their deadlines once passed before
// any reply could be read: every call failed, counted as the store's, though Redis ran them.

const TIMEOUT_MS = 100

interface Seen { failed: number, states: Array<StoreSnapshot['state']> }

/** A store with commandTimeout TIMEOUT_MS, up; its failed calls and state changes as the registry would see them. */
async function upStore (t: Test, settings: { url: string } | { cluster: string[] }, timeout = TIMEOUT_MS): Promise<{ store: RedisStore, seen: Seen }> {
  const seen: Seen = { failed: 0, states: [] }
  const events: RedisStoreEvents = { state (_s, state) { seen.states.push(state) }, failed () { seen.failed++ }, command () {} }
  const store = new RedisStore('stall', { ...settings, keyPrefix: 'sw:', connectTimeout: 5_000, commandTimeout: timeout }, events)
  t.teardown(() => store.close())
  await store.settled()
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return { store, seen }
}

/** `call` until it succeeds, for at most 5 s: a step the test needs done, which a commandTimeout of 100 ms can fail once on a loaded machine. */
async function done<T> (call: () => Promise<T>): Promise<T> {
  for (const start = performance.now(); ;) {
    try { return await call() } catch (err) { if (performance.now() - start >= 5_000) throw err }
  }
}

/** Blocks the event loop, as a busy process does. */
function busy (ms: number): void {
  for (const end = performance.now() + ms; performance.now() < end;);
}

/** Each call's outcome: 'answered' or its error message. */
async function outcomes (calls: Array<Promise<unknown>>): Promise<string[]> {
  return (await Promise.allSettled(calls)).map(s => s.status === 'rejected' ? (s.reason as Error).message : 'answered')
}

/** Rounds of get, run(counter) and set, the loop blocked past commandTimeout before they are written: all answered, none counted, the counter charged once a round. */
async function stallBeforeWrite (t: Test, store: RedisStore, seen: Seen, counted: () => Promise<string | null>): Promise<void> {
  // The script loaded, the keys' connections open: the calls below are one round trip each.
  await done(() => store.run(counter, ['{sw}n'], [0]))
  await done(() => store.set('{sw}k', 'v'))
  const failedBefore = seen.failed
  const charged = Number(await counted())
  for (let round = 0; round < 3; round++) {
    // Made in a setImmediate: those the calls' sending waits for run in the next check phase, after the deadlines' timer.
    await new Promise(resolve => setImmediate(resolve))
    const calls = [store.get('{sw}k'), store.run(counter, ['{sw}n'], [0]), store.set(`{sw}k${round}`, 'w')]
    busy(2 * TIMEOUT_MS)
    t.same(await outcomes(calls), ['answered', 'answered', 'answered'], `round ${round}: each call got its answer`)
  }
  t.equal(seen.failed, failedBefore, 'no store error counted')
  t.equal(Number(await counted()), charged + 3, 'each charge answered, once')
  t.same(seen.states, ['up'], 'the store stayed up')
}

t.test('standalone: calls made, then the loop blocked before they are written: answered, not counted', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const { store, seen } = await upStore(t, { url: redis.url })
  await stallBeforeWrite(t, store, seen, () => redis.cli('GET', 'sw:{sw}n'))
})

t.test('standalone: calls queued behind a pipeline awaiting its replies, then the loop blocked: answered, not counted', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const { store, seen } = await upStore(t, { url: redis.url })
  await done(() => store.run(counter, ['n'], [0]))
  const failedBefore = seen.failed
  for (let round = 0; round < 3; round++) {
    const first = store.get('k')
    // The first pipeline is written in this setImmediate; the calls below wait for its replies.
    await new Promise(resolve => setImmediate(resolve))
    const queued = [store.get('k'), store.set(`k${round}`, 'w'), store.run(counter, ['n'], [0])]
    busy(2 * TIMEOUT_MS)
    t.same(await outcomes([first, ...queued]), ['answered', 'answered', 'answered', 'answered'], `round ${round}: each call got its answer`)
  }
  t.equal(seen.failed, failedBefore, 'no store error counted')
  t.equal(await redis.cli('GET', 'sw:n'), '4', 'each charge answered, once')
  t.same(seen.states, ['up'], 'the store stayed up')
})

t.test('cluster: calls made, then the loop blocked before they are written: answered, not counted', async t => {
  const cluster = await startCluster(3)
  t.teardown(() => cluster.close())
  const { store, seen } = await upStore(t, { cluster: [cluster.nodes[0]?.address as string] })
  const owner = async () => {
    for (const node of cluster.nodes) {
      const value = await node.cli('GET', 'sw:{sw}n')
      if (value !== '') return value
    }
    return null
  }
  await stallBeforeWrite(t, store, seen, owner)
})

t.test('a frozen server still fails calls at commandTimeout after they are written, the loop blocked or not, each counted', async t => {
  // Long enough that a loaded machine cannot push a call failing on time past the bounds below, which
  // one failing a commandTimeout late cannot meet.
  const timeout = 1_000
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const { store, seen } = await upStore(t, { url: redis.url }, timeout)
  await done(() => store.run(counter, ['n'], [0]))
  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  const failedBefore = seen.failed

  /** How long a call took to fail (ms), or -1 if it was answered. */
  const failAfter = async (call: Promise<unknown>, started: number) => {
    try { await call } catch { return performance.now() - started }
    return -1
  }
  // Frozen just now: no command has gone unanswered yet when the loop is blocked.
  let started = performance.now()
  const calls = [failAfter(store.get('k'), started), failAfter(store.run(counter, ['n'], [0]), started), failAfter(store.set('k', 'v'), started)]
  const stall = 1.5 * timeout
  busy(stall)
  const stalled = await Promise.all(calls)
  t.ok(stalled.every(ms => ms >= stall + timeout && ms < stall + 1.75 * timeout), `after the stall (${stall} ms), failed at commandTimeout (${timeout} ms) after they were written: ${stalled.map(Math.round).join(', ')} ms`)

  started = performance.now()
  const calm = await Promise.all([failAfter(store.get('k'), started), failAfter(store.run(counter, ['n'], [0]), started)])
  t.ok(calm.every(ms => ms >= timeout && ms < 1.75 * timeout), `the loop not blocked, failed at commandTimeout (${timeout} ms): ${calm.map(Math.round).join(', ')} ms`)
  t.equal(seen.failed - failedBefore, calm.length + stalled.length, 'each call counted as failed once')
  resume()
})
