import t, { type Test } from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { callUntil, until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

// CLIENT PAUSE WRITE: scripts wait out the pause, so calls time out and the store is judged down and
// reconnects; the new connection's ready check (INFO, a read) is answered. That is no answer to the
// calls: the store stays down, not up for a moment at every reconnect (an alert's `for:` reset).

/** A server, and a store on it (commandTimeout 100 ms) once up, whose script is loaded; its state changes. */
async function pausedSetup (t: Test): Promise<{ redis: RedisProcess, store: RedisStore, states: Array<StoreSnapshot['state']> }> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const states: Array<StoreSnapshot['state']> = []
  const events: RedisStoreEvents = { state (_s, state) { states.push(state) }, failed () {}, command () {} }
  const store = new RedisStore('paused', { url: redis.url, keyPrefix: 'pw:', connectTimeout: 1_000, commandTimeout: 100 }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'up')
  let loaded = false
  t.ok(await callUntil(async () => { await store.run(counter, ['{p}:n'], [0]); loaded = true }, () => loaded, 5_000), 'the script runs')
  return { redis, store, states }
}

const connections = async (redis: RedisProcess) => Number(/total_connections_received:(\d+)/.exec(await redis.cli('INFO', 'stats'))?.[1])

t.test('writes paused: down through the pause, its reconnects\' ready checks answered; up at the first call answered after it', async t => {
  const { redis, store, states } = await pausedSetup(t)
  const before = await connections(redis)
  await redis.cli('CLIENT', 'PAUSE', '7000', 'WRITE')
  const paused = performance.now()
  await callUntil(() => store.run(counter, ['{p}:n'], [0]), () => performance.now() - paused > 6_500, 8_000)
  // Less this test's own redis-cli connections.
  t.ok(await connections(redis) - before - 2 >= 2, 'the store reconnected (at its stall, then every 5 s)')
  t.same(states, ['up', 'down'], 'down all along')
  t.ok(await until(() => performance.now() - paused > 7_200, 2_000))
  t.ok(await callUntil(() => store.run(counter, ['{p}:n'], [0]), () => store.snapshot().state === 'up', 5_000), 'up at a call answered')
  t.same(states, ['up', 'down', 'up'])
})

t.test('a store no one calls after its stall\'s reconnect is up 5 s after it, the server well', async t => {
  const { redis, store, states } = await pausedSetup(t)
  await redis.cli('CLIENT', 'PAUSE', '1500', 'WRITE')
  t.ok(await callUntil(() => store.run(counter, ['{p}:n'], [0]), () => store.snapshot().state === 'down', 5_000), 'down')
  const down = performance.now()
  // The reconnect at the stall is ready at once: not up then, nor while the pause lasts.
  t.ok(await until(() => performance.now() - down > 3_000, 4_000))
  t.same(states, ['up', 'down'], 'not up at the ready check')
  t.ok(await until(() => store.snapshot().state === 'up', 4_000), 'up with no call')
  t.ok(performance.now() - down >= 4_500, 'once no call has failed for 5 s on the new connection')
})

// Up 5 s after each reconnect's ready check, a store called now and then (once every 6 s) during a
// long pause went down only after 3 calls failed over a second: up two thirds of the time, every
// call failing, the alert's `for:` reset at each cycle.
t.test('up by idling, down again at its first call unanswered; the next idle-up twice as late; back to 5 s once a call is answered', async t => {
  const { redis, store, states } = await pausedSetup(t)
  await redis.cli('CLIENT', 'PAUSE', '60000', 'WRITE')
  t.teardown(() => redis.cli('CLIENT', 'UNPAUSE').catch(() => {}))
  t.ok(await callUntil(() => store.run(counter, ['{p}:n'], [0]), () => store.snapshot().state === 'down', 5_000), 'down')
  t.ok(await until(() => store.snapshot().state === 'up', 9_000), 'up with no call, 5 s after the reconnect')
  await t.rejects(store.run(counter, ['{p}:n'], [0]), { code: 'STORE_UNAVAILABLE' })
  t.equal(store.snapshot().state, 'down', 'down at the first call unanswered')
  const down = performance.now()
  t.ok(await until(() => store.snapshot().state === 'up', 14_000), 'up with no call again')
  t.ok(performance.now() - down >= 9_500, `10 s after the reconnect this time (${Math.round(performance.now() - down)} ms)`)
  await redis.cli('CLIENT', 'UNPAUSE')
  await store.run(counter, ['{p}:n'], [0])
  await redis.cli('CLIENT', 'PAUSE', '60000', 'WRITE')
  t.ok(await callUntil(() => store.run(counter, ['{p}:n'], [0]), () => store.snapshot().state === 'down', 5_000), 'down')
  const again = performance.now()
  t.ok(await until(() => store.snapshot().state === 'up', 9_000), 'up with no call')
  t.ok(performance.now() - again < 8_000, `5 s after the reconnect again (${Math.round(performance.now() - again)} ms)`)
  t.same(states, ['up', 'down', 'up', 'down', 'up', 'down', 'up'])
})
