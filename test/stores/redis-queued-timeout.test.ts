import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'

// Long enough that a stalled event loop (a loaded machine) cannot push a call that failed on time
// past the bound below, which a call failing late (2 × commandTimeout at least) cannot meet.
const TIMEOUT_MS = 1_000

t.test('a frozen server: calls queued behind an auto-pipeline still fail within commandTimeout, each counted once', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  let failed = 0
  const events: RedisStoreEvents = { state () {}, failed () { failed++ }, command () {} }
  const store = new RedisStore('queued', { url: redis.url, keyPrefix: 'qt:', connectTimeout: 2_000, commandTimeout: TIMEOUT_MS }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  await store.set('k', 'v')

  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let resumed = false
  const resume = () => { if (!resumed) { resumed = true; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)

  /** How long a call took to fail (ms), or -1 if it was answered. */
  const failAfter = async (call: () => Promise<unknown>) => {
    const started = performance.now()
    try { await call() } catch { return performance.now() - started }
    return -1
  }
  const first = failAfter(() => store.get('k'))
  // The first call's auto-pipeline is sent in a setImmediate: the calls below wait in the next one.
  await new Promise(resolve => setImmediate(resolve))
  const queued = [failAfter(() => store.get('k')), failAfter(() => store.get('k')), failAfter(() => store.set('k', 'w')), failAfter(() => store.delete('k'))]
  const took = await Promise.all([first, ...queued])
  resume()
  t.ok(took.every(ms => ms >= 0), `every call failed: ${took.map(Math.round).join(', ')} ms`)
  // ioredis's commandTimeout alone starts when a queued command is written: the first pipeline's timeout later, 2 × commandTimeout at least.
  t.ok(took.every(ms => ms < 1.75 * TIMEOUT_MS), `each within commandTimeout (${TIMEOUT_MS} ms) of its call, not twice it`)

  // Answered again: by then the frozen commands' late replies (or ioredis's own timeouts) came too, and were ignored.
  let answered = false
  // The polls are calls too: one failing (a server slow to come back on a loaded machine) is not one of those above.
  let pollsFailed = 0
  t.ok(await until(() => { store.get('k').then(() => { answered = true }, () => { pollsFailed++ }); return answered }, 10_000), 'answered once the server is back')
  t.equal(failed - pollsFailed, took.length, 'each call counted as failed once')
})
