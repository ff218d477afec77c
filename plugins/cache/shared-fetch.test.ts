import t from 'tap'
import { StoreError, type Store } from '../../src/index.ts'
import { RedisStore } from '../../src/stores/redis-store.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { until } from '../../test/helpers/wait.ts'
import { SharedFetch } from './shared-fetch.ts'

t.test('a give-back the store failed is tried again: the fetch is free once the store is back, not at its expiry', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  // commandTimeout 1 s: the paused give-back times out whatever it is; the takes before it get room on a loaded machine.
  const store = new RedisStore('shared', { url: redis.url, keyPrefix: 'sf:', connectTimeout: 1_000, commandTimeout: 1_000 }, { state () {}, failed () {}, command () {} })
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'up')
  const shared = new SharedFetch(store, 30_000)
  const giveBack = await shared.take('page', 'request-1')
  if (giveBack === undefined) throw new Error('not taken')
  t.equal(await shared.take('page', 'request-2'), undefined, 'taken: another request waits')
  // The give-back's script is held by the server (a write while writes are paused), and times out.
  await redis.cli('CLIENT', 'PAUSE', '10000', 'WRITE')
  giveBack()
  t.ok(await until(() => /timed out/.test(store.snapshot().lastError ?? '')), 'the give-back failed')
  // Its connection killed, the held script never runs.
  await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
  await redis.cli('CLIENT', 'UNPAUSE')
  let held = true
  const started = performance.now()
  while (held && performance.now() - started < 5_000) held = (await redis.cli('EXISTS', 'sf:f:page#fetch')) === '1'
  t.notOk(held, 'given back within seconds (its TTL is 30 s)')
})

t.test('a give-back the store keeps failing is tried again only until the fetch would have expired', async t => {
  let gives = 0
  const down = { run: async (script: { name: string }) => { if (script.name !== 'cache-fetch-give') return 1; gives++; throw new StoreError('STORE_UNAVAILABLE', 'down') } } as unknown as Store
  const shared = new SharedFetch(down, 600)
  const giveBack = await shared.take('page', 'request-1')
  const expired = performance.now() + 600
  giveBack?.()
  // Every 250 ms while the next try comes before the expiry: at 250 and 500 ms (later on a busy machine).
  t.ok(await until(() => gives >= 2, 2_000), 'tried again')
  await new Promise(resolve => setTimeout(resolve, expired + 500 - performance.now()))
  t.ok(gives <= 3, `${gives} tries, none after the fetch would have expired`)
})

t.test('a take that failed is a free fetch, given back once', async t => {
  let gives = 0
  const failing = { run: async (script: { name: string }) => { if (script.name === 'cache-fetch-give') gives++; throw new StoreError('STORE_UNAVAILABLE', 'down') } } as unknown as Store
  const shared = new SharedFetch(failing, 600)
  const giveBack = await shared.take('page', 'request-1')
  t.type(giveBack, 'function', 'free: this request fetches')
  giveBack?.()
  // A retry would come 250 ms after the first failure.
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(gives, 1, 'once')
})
