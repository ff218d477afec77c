import t from 'tap'
import { compilePlans } from './plans.ts'
import { Precheck } from './precheck.ts'

// The local pre-check alone, at chosen instants (ms). Decisions: [allowed, then per limit: ok, remaining, ms].

const planOf = () => compilePlans({ limits: [{ name: 'a', requests: 10, window: '1s' }, { name: 'b', requests: 3, window: '1m' }] }, []).base
const KEYS = ['rl:{all}:a', 'rl:{all}:b']

t.test('nothing remembered: no decision', async t => {
  t.equal(new Precheck().check(planOf(), KEYS, 0), undefined)
})

t.test('a rejected key is rejected until sentAt + its wait; an allowed one is not remembered', async t => {
  const p = new Precheck()
  const plan = planOf()
  // At 100 the store allowed a (reset in 1000 ms) and rejected b (retry in 2500 ms).
  p.remember(plan, KEYS, [0, 1, 5, 1000, 0, 0, 2500], 100)
  t.same(p.check(plan, KEYS, 1000), [0, 1, 10, 0, 0, 0, 1600])
  t.same(p.check(plan, KEYS, 2599.5), [0, 1, 10, 0, 0, 0, 1], 'the wait rounded up')
  t.equal(p.check(plan, KEYS, 2600), undefined, 'over at sentAt + wait')
  t.equal(p.check(plan, KEYS, 3000), undefined)
})

t.test('the first limit rejected, then both; another plan knows nothing of it', async t => {
  const p = new Precheck()
  const plan = planOf()
  p.remember(plan, KEYS, [0, 0, 0, 400, 1, 2, 60_000], 0)
  t.same(p.check(plan, KEYS, 100), [0, 0, 0, 300, 1, 3, 0])
  p.remember(plan, KEYS, [0, 0, 0, 500, 0, 0, 900], 200)
  t.same(p.check(plan, KEYS, 300), [0, 0, 0, 400, 0, 0, 800])
  t.same(p.check(plan, KEYS, 800), [0, 1, 10, 0, 0, 0, 300], 'a over, b still waiting')
  t.equal(p.check(planOf(), KEYS, 300), undefined)
})

t.test('the keys are only those of the request: another key of the same plan is not held', async t => {
  const p = new Precheck()
  const plan = planOf()
  p.remember(plan, KEYS, [0, 0, 0, 400, 0, 0, 400], 0)
  t.equal(p.check(plan, ['rl:{all}:a:other', 'rl:{all}:b:other'], 100), undefined)
})

t.test('at most 10 000 keys per plan: the least recently rejected is forgotten', async t => {
  const p = new Precheck()
  const plan = planOf()
  for (let i = 0; i <= 10_000; i++) p.remember(plan, [`k${i}`], [0, 0, 0, 1000], 0)
  t.equal(p.check(plan, ['k0'], 1), undefined)
  t.same(p.check(plan, ['k1'], 1), [0, 0, 0, 999, 1, 3, 0])
  t.same(p.check(plan, ['k10000'], 1), [0, 0, 0, 999, 1, 3, 0])
})
