import t from 'tap'
import { RedisStore, type RedisStoreEvents } from '../../src/stores/redis-store.ts'
import { RedisProcess } from '../helpers/redis.ts'
import { REFUSALS } from '../helpers/redis-refusals.ts'
import { callUntil, until } from '../helpers/wait.ts'
import { counter } from './store-cases.ts'

// A server busy with another client's script, or refusing writes after a failed save or for want of
// replicas, is unavailable for a while, not answering about the call: worth a retry, and down while
// every call is refused, as a server loading its data is.
for (const refusal of REFUSALS) {
  t.test(`${refusal.reply}: calls fail STORE_UNAVAILABLE; the store is down while every call does, up at the first answered once it is over`, async t => {
    const redis = await RedisProcess.start()
    t.teardown(() => redis.stop())
    const states: string[] = []
    const events: RedisStoreEvents = { state (_s, state) { states.push(state) }, failed () {}, command () {} }
    // 2 s: a refusal is answered at once; no loaded machine times a call out.
    const store = new RedisStore('refused', { url: redis.url, keyPrefix: 'rf:', connectTimeout: 2_000, commandTimeout: 2_000 }, events)
    t.teardown(() => store.close())
    t.ok(await until(() => store.snapshot().state === 'up'), 'up')
    await store.set('k', 'v', { tags: ['t'] })
    const end = await refusal.start(redis)
    const unavailable = { name: 'StoreError', code: 'STORE_UNAVAILABLE', message: new RegExp(`^${refusal.reply} `) }
    await t.rejects(store.run(counter, ['{c}:n'], [0]), unavailable, 'a script')
    await t.rejects(store.set('k2', 'v'), unavailable, 'a set')
    await t.rejects(store.deleteTag('t'), unavailable, 'a tag purge')
    if (refusal.reads) t.equal((await store.get('k'))?.toString(), 'v', 'reads are answered')
    else await t.rejects(store.get('k'), unavailable, 'a read')
    t.ok(await callUntil(() => store.run(counter, ['{c}:n'], [0]), () => store.snapshot().state === 'down', 5_000), 'down once calls have been refused for a second')
    t.match(store.snapshot().lastError, new RegExp(`^${refusal.reply} `))
    await end()
    t.ok(await callUntil(() => store.run(counter, ['{c}:n'], [0]), () => store.snapshot().state === 'up', 5_000), 'up at the first call answered')
    t.same(states, ['up', 'down', 'up'])
    t.equal(await store.deleteTag('t'), 1, 'the purge goes through')
  })
}
