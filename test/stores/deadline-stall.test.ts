import { once } from 'node:events'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { Deadlines } from '../../src/deadlines.ts'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

const TIMEOUT_MS = 100

/** A store on a real server of the test's own, up; its failed calls and state changes as the registry would see them. */
async function upStore (t: Test): Promise<{ redis: RedisProcess, store: RedisStore, seen: { failed: number, states: Array<StoreSnapshot['state']> } }> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const seen = { failed: 0, states: [] as Array<StoreSnapshot['state']> }
  const events: RedisStoreEvents = { state (_s, state) { seen.states.push(state) }, failed () { seen.failed++ }, command () {} }
  const store = new RedisStore('stall', { url: redis.url, keyPrefix: 'ds:', connectTimeout: 2_000, commandTimeout: TIMEOUT_MS }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return { redis, store, seen }
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

t.test('calls answered while the event loop was blocked past commandTimeout succeed, no failure counted', async t => {
  const { redis, store, seen } = await upStore(t)
  // The script loaded (a first EVALSHA is answered NOSCRIPT, then sent as EVAL): the calls below are one round trip each.
  await done(() => store.run(counter, ['warm'], [0]))
  await done(() => store.set('k', 'v'))
  const failedBefore = seen.failed
  for (let round = 0; round < 3; round++) {
    const calls = [store.get('k'), store.run(counter, ['n'], [0]), store.set(`k${round}`, 'w')]
    // The calls go out in a setImmediate (auto-pipeline, script batch): written, then the process is busy while Redis answers.
    await new Promise(resolve => setImmediate(resolve))
    busy(2 * TIMEOUT_MS)
    const settled = await Promise.allSettled(calls)
    t.same(settled.map(s => s.status === 'rejected' ? (s.reason as Error).message : 'answered'), ['answered', 'answered', 'answered'], `round ${round}: each call got its answer`)
  }
  t.equal(seen.failed, failedBefore, 'no store error counted')
  t.equal(await redis.cli('GET', 'ds:n'), '3', 'each charge answered')
  t.same(seen.states, ['up'], 'the store stayed up')
})

t.test('answers coming after their calls failed show the server is there: a slow server is not judged stalled, its connection kept', async t => {
  const { redis, store, seen } = await upStore(t)
  await done(() => store.set('k', 'v'))
  const own = redis.client()
  t.teardown(() => own.disconnect())
  const ownId = String(await own.client('ID'))
  /** The ids of the connections other than the test's own: the store's. */
  const storeConnections = async () => [...String(await own.client('LIST')).matchAll(/^id=(\d+)/gm)].map(m => m[1]).filter(id => id !== ownId)
  const before = await storeConnections()
  const started = performance.now()
  // Past the 3 calls over 1 s that judge a store stalled when none is answered in between.
  for (let round = 0; round < 4 || performance.now() - started < 1_500; round++) {
    // The call is held past its deadline, then run and answered.
    await own.call('CLIENT', 'PAUSE', String(3 * TIMEOUT_MS), 'ALL')
    await t.rejects(store.get('k'), /timed out/, `round ${round}: the call failed at its deadline`)
    // The test's own call waits out the pause: the store's late answer is on its way.
    await own.ping()
  }
  t.same(seen.states, ['up'], 'never judged down')
  t.same(await storeConnections(), before, 'its connection kept')
  t.equal((await done(() => store.get('k')))?.toString(), 'v', 'calls go on')
})

t.test('Deadlines: an entry whose answer waits unread when its deadline passes is taken, not expired', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const socket = connect(redis.port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  const expired: string[] = []
  const deadlines = new Deadlines<string>(20, item => { expired.push(item) })
  const answered = deadlines.add('answered')
  deadlines.add('unanswered')
  const taken = new Promise(resolve => socket.once('data', () => resolve(deadlines.take(answered))))
  socket.write('PING\r\n')
  // The answer arrives while the process is busy past both deadlines: read before either expires.
  busy(60)
  t.equal(await taken, true, 'taken in time')
  t.ok(await until(() => expired.length === 1), 'the other one expired')
  t.same(expired, ['unanswered'])
})
