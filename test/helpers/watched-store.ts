import type { Test } from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import type { StoreSnapshot } from '../../src/stores/store.ts'
import { RedisProcess } from './redis.ts'
import { until } from './wait.ts'

/** A Redis store on a redis-server of its own, its states and calls watched. */
export interface WatchedStore {
  readonly redis: RedisProcess
  readonly store: RedisStore
  readonly states: Array<StoreSnapshot['state']>
  /** Calls made so far (each store call's `command` event). */
  calls (): number
  /** Resolves with when (performance.now()) the store next becomes `state`, or undefined after `maxMs`. */
  next (state: StoreSnapshot['state'], maxMs: number): Promise<number | undefined>
}

/** A store `name` (keys under `prefix`, calls timed out after `commandTimeout` ms), up before this resolves. */
export async function watchedStore (t: Test, name: string, prefix: string, commandTimeout: number): Promise<WatchedStore> {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const states: Array<StoreSnapshot['state']> = []
  const waiting = new Set<(state: StoreSnapshot['state']) => void>()
  let calls = 0
  const events: RedisStoreEvents = { state (_s, state) { states.push(state); for (const w of waiting) w(state) }, failed () {}, command () { calls++ } }
  const store = new RedisStore(name, { url: redis.url, keyPrefix: prefix, connectTimeout: 2_000, commandTimeout }, events)
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'up')
  const next = (state: StoreSnapshot['state'], maxMs: number) => new Promise<number | undefined>(resolve => {
    const timer = setTimeout(() => { waiting.delete(seen); resolve(undefined) }, maxMs)
    const seen = (s: StoreSnapshot['state']) => {
      if (s !== state) return
      clearTimeout(timer)
      waiting.delete(seen)
      resolve(performance.now())
    }
    waiting.add(seen)
  })
  return { redis, store, states, calls: () => calls, next }
}
