import t from 'tap'
import { CircuitBreaker } from '../../src/upstreams/circuit-breaker.ts'
import { OutlierState } from '../../src/upstreams/outlier-detection.ts'
import { RetryBudget } from '../../src/upstreams/retry-budget.ts'

// Times are given explicitly (ms), so these run instantly and exactly.

t.test('circuit breaker: opens on the failure rate, half-opens after the delay, closes on a probe success', async t => {
  const b = new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 10, halfOpenAfterMs: 500 })
  let now = 0
  for (let i = 0; i < 4; i++) t.equal(b.record(false, now, now += 10), undefined, 'under minRequests: stays closed')
  for (let i = 0; i < 5; i++) b.record(true, now, now += 10)
  t.equal(b.state, 'closed', '4 of 9 failed')
  t.equal(b.record(false, now, now += 10), 'open', '5 of 10 failed: opens')
  t.notOk(b.allows(now + 499), 'open: no traffic before halfOpenAfter')
  now += 500
  t.ok(b.allows(now), 'a probe may go after halfOpenAfter')
  b.dispatched(now)
  t.equal(b.state, 'half-open')
  t.notOk(b.allows(now), 'one probe at a time')
  t.equal(b.record(false, now, now += 5), 'open', 'a failed probe opens it again')
  t.notOk(b.allows(now + 100), 'and the delay starts over')
  now += 500
  b.dispatched(now)
  t.equal(b.record(true, now, now += 5), 'closed', 'a successful probe closes it')
  t.ok(b.allows(now))
  for (let i = 0; i < 9; i++) b.record(false, now, now += 1)
  t.equal(b.state, 'closed', 'counts were reset on closing (9 < minRequests)')
})

t.test('circuit breaker: the window slides, old failures fade', async t => {
  const b = new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 4, halfOpenAfterMs: 100 })
  for (let i = 0; i < 3; i++) b.record(false, i, i)
  // 2.5 windows later the old failures no longer count: 1 failure in 4 requests.
  for (let i = 0; i < 3; i++) b.record(true, 2500 + i, 2500 + i)
  t.equal(b.record(false, 2504, 2504), undefined)
  t.equal(b.state, 'closed')
  t.notOk(new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 1, halfOpenAfterMs: 100 }).record(true, 0, 0), 'successes never open it')
})

t.test('circuit breaker: a probe that never reports stops blocking after halfOpenAfter', async t => {
  const b = new CircuitBreaker({ failureRate: 0.1, windowMs: 1000, minRequests: 1, halfOpenAfterMs: 100 })
  b.record(false, 0, 0)
  b.dispatched(100)
  t.notOk(b.allows(150))
  t.ok(b.allows(200))
})

t.test('circuit breaker: the previous window counts by how much of it still overlaps', async t => {
  const settings = { failureRate: 0.5, windowMs: 1000, minRequests: 4, halfOpenAfterMs: 500 }
  // 4 successes, then failures a quarter into the next window: the successes count 0.75 each (3),
  // so the third failure makes 3 of 6 failed.
  const a = new CircuitBreaker(settings)
  t.ok(a.allows(0), 'a new breaker lets traffic through from the start')
  for (let i = 0; i < 4; i++) a.record(true, i, i)
  t.equal(a.record(false, 1250, 1250), undefined, '1 failed of 4')
  t.equal(a.record(false, 1250, 1250), undefined, '2 failed of 5')
  t.equal(a.record(false, 1250, 1250), 'open', '3 failed of 6')
  // 1 failure and 5 successes, then failures half into the next window: 0.5 + 2.5 carried over,
  // so the second failure makes 2.5 of 5 failed.
  const b = new CircuitBreaker(settings)
  b.record(false, 0, 0)
  for (let i = 1; i < 6; i++) b.record(true, i, i)
  t.equal(b.record(false, 1500, 1500), undefined, '1.5 failed of 4')
  t.equal(b.record(false, 1500, 1500), 'open', '2.5 failed of 5')
  // An outcome at a window's end belongs to the next window, and one two windows later to none.
  const c = new CircuitBreaker(settings)
  for (let i = 0; i < 3; i++) c.record(false, 1000, 1000)
  t.equal(c.record(false, 1500, 1500), 'open', 'the 3 failures at 1000 still count whole at 1500')
  const d = new CircuitBreaker(settings)
  for (let i = 0; i < 3; i++) d.record(false, 0, 0)
  t.equal(d.record(false, 2000, 2000), undefined, 'the 3 failures at 0 no longer count at 2000')
})

t.test('circuit breaker: late answers while open, and a slow probe, do not move the reopening', async t => {
  const b = new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 1, halfOpenAfterMs: 500 })
  t.equal(b.record(false, 0, 0), 'open')
  t.equal(b.record(false, 0, 400), undefined, 'a late failure while open changes nothing')
  t.ok(b.allows(500), 'still half-opens 500 ms after opening')
  b.dispatched(500)
  t.equal(b.record(false, 500, 800), 'open', 'the probe failed 300 ms after it was sent')
  t.notOk(b.allows(1000), 'the delay counts from the probe\'s failure, not from its sending')
  t.ok(b.allows(1300))
})

t.test('circuit breaker: a request sent before halfOpenAfter (queued, or least-bad) is no probe', async t => {
  const b = new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 1, halfOpenAfterMs: 500 })
  t.equal(b.record(false, 0, 0), 'open')
  b.dispatched(100)
  t.equal(b.state, 'open', 'it stays open')
  t.equal(b.record(true, 100, 200), undefined, 'and its success does not close it')
  t.notOk(b.allows(499))
  b.dispatched(500)
  t.equal(b.state, 'half-open', 'the first request sent after halfOpenAfter is the probe')
})

t.test('circuit breaker: half-open, only the probe\'s own outcome decides', async t => {
  const b = new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 1, halfOpenAfterMs: 500 })
  t.equal(b.record(false, 0, 0), 'open')
  b.dispatched(100) // least-bad, while open
  b.dispatched(500)
  t.equal(b.record(true, -10, 600), undefined, 'a late answer to a request sent before it opened')
  t.equal(b.record(true, 100, 650), undefined, 'an answer to one sent while open')
  t.equal(b.state, 'half-open', 'the probe is still pending')
  t.notOk(b.allows(700), 'and still the only one')
  // The probe never reports: another takes its place after halfOpenAfter, and the first one's answer no longer counts.
  b.dispatched(1000)
  t.equal(b.record(true, 500, 1100), undefined, 'the given-up probe\'s answer')
  t.equal(b.record(false, 1000, 1200), 'open', 'the probe\'s failure opens it again')
})

t.test('circuit breaker: a reload\'s breaker takes over the counts and an open or half-open state', async t => {
  const settings = { failureRate: 0.5, windowMs: 1000, minRequests: 4, halfOpenAfterMs: 500 }
  const counting = new CircuitBreaker(settings)
  for (let i = 0; i < 3; i++) counting.record(false, i, i)
  const next = new CircuitBreaker(settings)
  next.inherit(counting.memory())
  t.equal(next.record(false, 3, 3), 'open', 'the fourth failure opens it: the three before counted')

  const halfOpen = new CircuitBreaker(settings)
  halfOpen.inherit(next.memory())
  t.notOk(halfOpen.allows(502), 'open: no traffic before halfOpenAfter')
  halfOpen.dispatched(600)
  t.equal(halfOpen.state, 'half-open', 'its probe went at 600')
  const after = new CircuitBreaker(settings)
  after.inherit(halfOpen.memory())
  t.equal(after.state, 'open', 'the probe answers to the old breaker: the new one is open...')
  t.notOk(after.allows(1099), '...until halfOpenAfter from the probe')
  t.ok(after.allows(1100), 'then it sends its own probe')
  after.dispatched(1100)
  t.equal(after.record(true, 1100, 1150), 'closed', 'whose success closes it')
})

t.test('circuit breaker: once a probe closed it, answers to requests sent before change nothing, after a reload too', async t => {
  const settings = { failureRate: 0.5, windowMs: 1000, minRequests: 2, halfOpenAfterMs: 500 }
  const b = new CircuitBreaker(settings)
  b.record(false, 0, 10)
  t.equal(b.record(false, 0, 20), 'open')
  b.dispatched(100) // least-bad, while open
  b.dispatched(520)
  t.equal(b.record(true, 520, 530), 'closed', 'the probe closes it')
  for (let i = 0; i < 4; i++) t.equal(b.record(false, 0, 600 + i), undefined, 'a late failure of a request sent before it opened')
  t.equal(b.record(false, 100, 610), undefined, 'and of one sent while open')
  const next = new CircuitBreaker(settings)
  next.inherit(b.memory())
  t.equal(next.record(false, 0, 700), undefined, 'a reload\'s breaker knows when it closed')
  t.equal(next.record(false, 530, 710), undefined, 'one sent as it closed counts (1 failure < minRequests)...')
  t.equal(next.record(false, 540, 720), 'open', '...as do those sent after')
})

t.test('retry budget: a reload\'s budget takes over the balance', async t => {
  const still = () => 0
  const spent = new RetryBudget(0.5, still)
  for (let i = 0; i < 4; i++) spent.withdraw()
  const next = new RetryBudget(0.5, still)
  next.inherit(spent)
  t.equal(next.balance, 6)
})

t.test('outlier detection: ejects after N consecutive failures, backoff doubles on repeat up to the max', async t => {
  const o = new OutlierState({ consecutiveFailures: 3, baseEjectionMs: 100, maxEjectionMs: 350 })
  t.notOk(o.failure(0, 0))
  t.notOk(o.failure(1, 1))
  o.success()
  t.notOk(o.failure(2, 2))
  t.notOk(o.failure(3, 3), 'a success resets the count')
  t.ok(o.failure(4, 4), 'third consecutive failure ejects')
  t.equal(o.ejectedUntil, 104)
  t.ok(o.ejected(50))
  t.notOk(o.failure(3, 60), 'late failures while ejected do not count')
  for (let i = 0; i < 2; i++) o.failure(200 + i, 200 + i)
  t.ok(o.failure(202, 202))
  t.equal(o.ejectedUntil, 402, 'second ejection lasts twice as long')
  for (let i = 0; i < 3; i++) o.failure(500 + i, 500 + i)
  t.equal(o.ejectedUntil, 502 + 350, 'third would be 400: capped at maxEjection')
  for (let i = 0; i < 3; i++) o.failure(2000 + i, 2000 + i)
  t.equal(o.ejectedUntil, 2002 + 100, 'after a long good stretch the backoff starts over')
  const off = new OutlierState(undefined)
  t.equal(Array.from({ length: 100 }, (_, i) => off.failure(i, i)).filter(Boolean).length, 0, 'passive: false never ejects')
})

t.test('outlier detection: an ejection ends at ejectedUntil; the backoff starts over only after more than maxEjection in', async t => {
  const o = new OutlierState({ consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 300 })
  o.failure(0, 0)
  t.ok(o.failure(0, 0))
  t.equal(o.ejectedUntil, 100)
  t.notOk(o.ejected(100), 'back in at 100')
  t.notOk(o.failure(100, 100), 'a failure at 100 counts...')
  t.ok(o.failure(100, 100), '...so the second one ejects again')
  t.equal(o.ejectedUntil, 300, 'for twice as long')
  o.failure(600, 600)
  t.ok(o.failure(600, 600))
  t.equal(o.ejectedUntil, 900, 'in for exactly maxEjection: the backoff goes on (400, capped at 300)')
  o.failure(1201, 1201)
  t.ok(o.failure(1201, 1201))
  t.equal(o.ejectedUntil, 1301, 'in for longer: it starts over at 100')
})

t.test('outlier detection: a target the upstream will not let out (maxEjectionPercent, the last available) stays; each further failure asks again', async t => {
  const o = new OutlierState({ consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 1000 })
  let asked = 0
  const refuse = () => { asked++; return false }
  t.notOk(o.failure(0, 0, refuse))
  t.equal(asked, 0, 'not asked before the threshold')
  t.notOk(o.failure(1, 1, refuse), 'the threshold reached, but refused')
  t.notOk(o.failure(2, 2, refuse), 'and again')
  t.equal(asked, 2)
  t.notOk(o.ejected(2))
  t.ok(o.failure(3, 3, () => true), 'ejected as soon as it may be')
  t.equal(o.ejectedUntil, 103, 'for the base ejection')
})

t.test('outlier detection: the upstream is told whether the target looks down (its last consecutiveFailures failures had no answer)', async t => {
  const o = new OutlierState({ consecutiveFailures: 3, baseEjectionMs: 100, maxEjectionMs: 1000 })
  const told: boolean[] = []
  const refuse = (down: boolean) => { told.push(down); return false }
  const STATUS = false
  const UNANSWERED = true
  o.failure(0, 0, refuse, STATUS)
  o.failure(1, 1, refuse, UNANSWERED)
  o.failure(2, 2, refuse, UNANSWERED)
  o.failure(3, 3, refuse, UNANSWERED)
  t.same(told, [false, true], 'a status in the run: not down; three unanswered in a row: down')
  o.failure(4, 4, refuse, STATUS)
  o.failure(5, 5, refuse, UNANSWERED)
  t.same(told.slice(2), [false, false], 'a status starts the count of unanswered ones over')
  o.success()
  o.failure(6, 6, refuse, UNANSWERED)
  o.failure(7, 7, refuse, UNANSWERED)
  t.same(told.slice(4), [], 'a success starts the run over')
  t.ok(o.failure(8, 8, down => down, UNANSWERED), 'ejected as down')
  o.failure(200, 200, refuse, UNANSWERED)
  o.failure(201, 201, refuse, UNANSWERED)
  o.failure(202, 202, refuse, STATUS)
  t.same(told.slice(4), [false], 'an ejection starts it over too')
})

t.test('outlier detection: failures of requests sent before the last ejection ended do not count', async t => {
  const o = new OutlierState({ consecutiveFailures: 2, baseEjectionMs: 100, maxEjectionMs: 1000 })
  o.failure(0, 10)
  t.ok(o.failure(0, 10))
  t.equal(o.ejectedUntil, 110)
  o.success() // a request sent after the ejection
  t.notOk(o.failure(5, 200), 'sent before the ejection, failed after it ended')
  t.notOk(o.failure(5, 201), 'another one')
  t.notOk(o.failure(50, 202), 'sent during it (least-bad)')
  t.notOk(o.ejected(202), 'not ejected again')
  t.notOk(o.failure(110, 210), 'sent as it ended: counts...')
  t.ok(o.failure(150, 220), '...so the next one ejects')
  t.equal(o.ejectedUntil, 420, 'for twice as long')
})

t.test('retry budget: 10 retries in reserve, then ratio x requests', async t => {
  // Every request fails and wants one retry. 0.25 is exact in floating point, so the counts are too.
  // The clock stands still: time refills the reserve (below), requests do not.
  const tally = (ratio: number, requests: number) => {
    const budget = new RetryBudget(ratio, () => 0)
    const granted: number[] = []
    for (let i = 1; i <= requests; i++) {
      budget.deposit()
      if (budget.withdraw()) granted.push(i)
    }
    return granted
  }
  // From 10, each request deposits 0.25 and spends 1: requests 1-13 are granted (10 -> 0), then one
  // in four (17, 21, ... 97): 34 for 100 requests, under the bound 10 + 0.25 x 100.
  const quarter = tally(0.25, 100)
  t.equal(quarter.length, 34)
  t.same(quarter.slice(10, 16), [11, 12, 13, 17, 21, 25])
  t.same(tally(0, 100), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'ratio 0 leaves only the reserve')
  const full = new RetryBudget(1, () => 0)
  for (let i = 0; i < 3; i++) full.withdraw()
  t.equal(full.balance, 7)
  for (let i = 0; i < 50; i++) full.deposit()
  t.equal(full.balance, 10, 'the balance never exceeds the reserve')
  t.equal(new RetryBudget(0.1).balance, 10, 'and starts full')
})

t.test('retry budget: the reserve refills over time, 10 a second, so budget 0 still retries after the first 10', async t => {
  let now = 1_000
  const budget = new RetryBudget(0, () => now)
  const spend = () => { let n = 0; while (budget.withdraw()) n++; return n }
  t.equal(spend(), 10, 'the reserve')
  now += 100
  t.equal(spend(), 1, '100 ms later: one more')
  now += 450
  t.equal(spend(), 4, '450 ms later: 4 (4.5)')
  now += 60_000
  t.equal(budget.balance, 10, 'a minute later: full, never more')
  const next = new RetryBudget(0, () => now)
  for (let i = 0; i < 10; i++) budget.withdraw()
  next.inherit(budget)
  t.equal(next.balance, 0, 'a reload takes over the spent balance...')
  now += 1_000
  t.equal(next.balance, 10, '...which refills as time passes')
})
