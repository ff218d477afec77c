import t from 'tap'
import { Consumers } from '../../src/consumers/consumers.ts'
import { MemoryStore } from '../../src/stores/memory-store.ts'
import { compilePlans } from './plans.ts'
import type { RateLimitConfig } from './schema.ts'
import { decideBySlot, slotCalls } from './slots.ts'

// How a plan is split for Redis Cluster, and how the answers of its calls are put back together.

// Token buckets: no window edge for the requests of a test to fall across.
const config: RateLimitConfig = {
  algorithm: 'token-bucket',
  limits: [
    { name: 'daily', requests: 3, window: '1h' },
    { name: 'per-ip', requests: 2, window: '1h', by: ['ip'] },
    { name: 'per-route', requests: 5, window: '1h', by: ['route', 'consumer'] }
  ]
}
const byOf = (l: { index: number }) => config.limits[l.index]?.by ?? ['consumer']

t.test('limits grouped by their first key part, with their arguments; a plan in one group is not split', async t => {
  const consumers = new Consumers([{ id: 'solo', metadata: { 'rate-limit': { 'per-ip': false } } }])
  const plans = compilePlans(config, consumers.all)
  const calls = slotCalls(plans, byOf)
  t.same(calls.get(plans.base), [
    { at: [0, 2], args: ['t', '3', '3600000', '3', 't', '5', '3600000', '5'] },
    { at: [1], args: ['t', '2', '3600000', '2'] }
  ], 'daily and per-route by consumer, per-ip apart')
  const solo = plans.byConsumer.get('solo')
  t.ok(solo !== undefined && !calls.has(solo), 'without per-ip: every key in one slot, one call')
})

t.test('one decision from the calls, in the plan\'s order; each call charges what it allowed', async t => {
  const store = new MemoryStore('m')
  const plans = compilePlans(config, [])
  const calls = slotCalls(plans, byOf).get(plans.base) ?? []
  const keys = ['daily', 'per-ip', 'per-route']
  t.match(await decideBySlot(store, calls, keys, plans.base, 0), [1, 1, 2, Number, 1, 1, Number, 1, 4, Number], 'all allowed')
  const second = await decideBySlot(store, calls, keys, plans.base, 0)
  t.match(second, [1, 1, 1, Number, 1, 0, Number, 1, 3, Number])
  const third = await decideBySlot(store, calls, keys, plans.base, 0)
  t.match(third, [0, 1, 0, Number, 0, 0, Number, 1, 2, Number], 'per-ip rejects: the decision is a rejection, the other call charged')
})

t.test('a call run after its deadline makes the decision LATE, with the store\'s time; it charged nothing', async t => {
  const store = new MemoryStore('m')
  const plans = compilePlans(config, [])
  const calls = slotCalls(plans, byOf).get(plans.base) ?? []
  const keys = ['daily', 'per-ip', 'per-route']
  const before = Date.now()
  const late = await decideBySlot(store, calls, keys, plans.base, 1)
  t.equal(late[0], -1)
  t.ok((late.at(-1) as number) >= before, 'the store\'s time last')
  t.match(await decideBySlot(store, calls, keys, plans.base, Date.now() + 60_000), [1, 1, 2, Number, 1, 1, Number, 1, 4, Number, Number], 'a deadline to come: the first request counted')
})
