import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { until } from '../helpers/wait.ts'

const TIMEOUT_MS = 400

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
  // ioredis's commandTimeout alone starts when a queued command is written: the first pipeline's timeout later, about 2 × commandTimeout.
  t.ok(took.every(ms => ms < TIMEOUT_MS + 300), `each within commandTimeout (${TIMEOUT_MS} ms) of its call`)

  // Answered again: by then the frozen commands' late replies (or ioredis's own timeouts) came too, and were ignored.
  let answered = false
  // The polls are calls too: one failing (a server slow to come back on a loaded machine) is not one of those above.
  let pollsFailed = 0
  t.ok(await until(() => { store.get('k').then(() => { answered = true }, () => { pollsFailed++ }); return answered }, 10_000), 'answered once the server is back')
  t.equal(failed - pollsFailed, took.length, 'each call counted as failed once')
})
