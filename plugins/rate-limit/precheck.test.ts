import t from 'tap'
import { liveBufferBytes } from '../../test/helpers/memory.ts'
import { compilePlans, type Plan } from './plans.ts'
import { Precheck, SHARED_RECHECK_MS } from './precheck.ts'

// The local pre-check alone, at chosen instants (ms). Decisions: [allowed, then per limit: ok, remaining, ms].

const planOf = () => compilePlans({ limits: [{ name: 'a', requests: 10, window: '1s' }, { name: 'b', requests: 3, window: '1m' }] }, []).base
const KEYS = ['rl:{all}:a', 'rl:{all}:b']

t.test('nothing remembered: no decision', async t => {
  t.equal(new Precheck(Infinity).check(planOf(), KEYS, 0), undefined)
})

t.test('a rejected key is rejected until sentAt + its wait; an allowed one is not remembered', async t => {
  const p = new Precheck(Infinity)
  const plan = planOf()
  // At 100 the store allowed a (reset in 1000 ms) and rejected b (retry in 2500 ms).
  p.remember(plan, KEYS, [0, 1, 5, 1000, 0, 0, 2500], 100)
  t.same(p.check(plan, KEYS, 1000), [0, 1, 10, 0, 0, 0, 1600])
  t.same(p.check(plan, KEYS, 2599.5), [0, 1, 10, 0, 0, 0, 1], 'the wait rounded up')
  t.equal(p.check(plan, KEYS, 2600), undefined, 'over at sentAt + wait')
  t.equal(p.check(plan, KEYS, 3000), undefined)
})

t.test('the first limit rejected, then both; another plan knows nothing of it', async t => {
  const p = new Precheck(Infinity)
  const plan = planOf()
  p.remember(plan, KEYS, [0, 0, 0, 400, 1, 2, 60_000], 0)
  t.same(p.check(plan, KEYS, 100), [0, 0, 0, 300, 1, 3, 0])
  p.remember(plan, KEYS, [0, 0, 0, 500, 0, 0, 900], 200)
  t.same(p.check(plan, KEYS, 300), [0, 0, 0, 400, 0, 0, 800])
  t.same(p.check(plan, KEYS, 800), [0, 1, 10, 0, 0, 0, 300], 'a over, b still waiting')
  t.equal(p.check(planOf(), KEYS, 300), undefined)
})

t.test('the keys are only those of the request: another key of the same plan is not held', async t => {
  const p = new Precheck(Infinity)
  const plan = planOf()
  p.remember(plan, KEYS, [0, 0, 0, 400, 0, 0, 400], 0)
  t.equal(p.check(plan, ['rl:{all}:a:other', 'rl:{all}:b:other'], 100), undefined)
})

t.test('at most 10 000 keys per route, whatever the plans: the least recently rejected is forgotten', async t => {
  const p = new Precheck(Infinity)
  // Two plans (the route's, a consumer's overrides): one bound for both, not one each.
  const plans = [planOf(), planOf()]
  for (let i = 0; i <= 10_000; i++) p.remember(plans[i % 2] as Plan, [`k${i}`], [0, 0, 0, 1000], 0)
  t.equal(p.check(plans[0] as Plan, ['k0'], 1), undefined)
  t.same(p.check(plans[1] as Plan, ['k1'], 1), [0, 0, 0, 999, 1, 3, 0])
  t.same(p.check(plans[0] as Plan, ['k10000'], 1), [0, 0, 0, 999, 1, 3, 0])
})

t.test('a key two plans share is remembered for the plan that rejected it last', async t => {
  const p = new Precheck(Infinity)
  const [a, b] = [planOf(), planOf()]
  p.remember(a, KEYS, [0, 0, 0, 400, 1, 2, 0], 0)
  p.remember(b, KEYS, [0, 0, 0, 700, 1, 2, 0], 0)
  t.equal(p.check(a, KEYS, 100), undefined, 'a forgot it: its next request asks the store')
  t.same(p.check(b, KEYS, 100), [0, 0, 0, 600, 1, 3, 0])
})

t.test('memory grows with the keys remembered, not with the routes and plans that have rejected one', async t => {
  // Heap and ArrayBuffers after full GCs. With a cache per route and plan sized for 10,000 keys up
  // front, this was 400 x 220 kB (88 MB); a key is a few hundred bytes.
  const held = () => { liveBufferBytes(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers }
  const plan = planOf()
  const plans = Array.from({ length: 200 }, planOf)
  const before = held()
  // 200 routes of one plan, and one route with 200 plans (consumers with overrides), each with one key rejected.
  const routes = Array.from({ length: 200 }, () => new Precheck(Infinity))
  for (const r of routes) r.remember(plan, ['k'], [0, 0, 0, 1000], 0)
  const oneRoute = new Precheck(Infinity)
  for (const [i, pl] of plans.entries()) oneRoute.remember(pl, [`k${i}`], [0, 0, 0, 1000], 0)
  const grown = held() - before
  t.ok(grown < 8_000_000, `${(grown / 1e6).toFixed(1)} MB for 400 keys remembered`)
  t.same(oneRoute.check(plans[199] as Plan, ['k199'], 1), [0, 0, 0, 999, 1, 3, 0], 'every key still known')
  t.same(routes[0]?.check(plan, ['k'], 1), [0, 0, 0, 999, 1, 3, 0])
})

t.test('recheckMs: a rejection is trusted that long, then the store is asked again; its wait stays the store\'s', async t => {
  const p = new Precheck(SHARED_RECHECK_MS)
  const plan = planOf()
  // 100 s to wait (b is 3 per minute, sliding): the store may lose the counter meanwhile (a FLUSHALL, a Redis restarted without persistence).
  p.remember(plan, KEYS, [0, 1, 5, 1000, 0, 0, 100_000], 100)
  t.same(p.check(plan, KEYS, 100 + SHARED_RECHECK_MS - 1), [0, 1, 10, 0, 0, 0, 100_000 - SHARED_RECHECK_MS + 1], 'the wait the store gave, not the recheck\'s')
  t.equal(p.check(plan, KEYS, 100 + SHARED_RECHECK_MS), undefined, 'the store is asked again')
  p.remember(plan, KEYS, [0, 1, 5, 1000, 0, 0, 1000], 200)
  t.same(p.check(plan, KEYS, 1000), [0, 1, 10, 0, 0, 0, 200], 'a wait shorter than the recheck: until it ends')
  t.equal(p.check(plan, KEYS, 1200), undefined)
})
