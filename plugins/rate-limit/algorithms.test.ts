import t from 'tap'
import { BucketState, charge, check, SlidingState, type AlgorithmCode, type Check, type State } from './algorithms.ts'

// The algorithms alone, at chosen instants (ms): a key's life as a sequence of requests.

interface Step extends Check {
  /** The state kept after this request, in its stored (Lua) form. */
  kept: string
}

/** Runs requests at `times` on one key: the answers, and the state kept after each (charged as the store script does). */
function run (alg: AlgorithmCode, q: number, w: number, b: number, times: number[]): Step[] {
  let stored: State | undefined
  return times.map(now => {
    const c = check(alg, q, w, b, stored, now)
    if (c.ok) stored = charge(alg, q, w, stored, now)?.state ?? stored
    return { ...c, kept: String(stored) }
  })
}

/** The state `kept` (a Lua string "window count previous") as the memory store holds it. */
const sliding = (kept: string | undefined): SlidingState => {
  const [w, c, p] = (kept ?? '').split(' ').map(Number)
  return new SlidingState(w as number, c as number, p as number)
}

t.test('sliding window: the previous window counts in proportion to its overlap', async t => {
  const W = 10_000
  // Four at the end of window 0; at 2.5 s into window 1 they weigh 3, so one more fits, not two.
  const out = run('s', 4, W, 0, [9_000, 9_100, 9_200, 9_300, 12_500, 12_600])
  t.same(out.map(c => c.ok), [true, true, true, true, true, false])
  t.same(out.map(c => c.free), [4, 3, 2, 1, 1, 0])
  // Rejected at 12.6 s: 4·(1 − e/W) + 1 + 1 ≤ 4 needs e ≥ 5 s, i.e. 2.4 s from now.
  t.equal(out[5]?.ms, 2_400)
  t.equal(out[4]?.ms, 2_500, 'the last that fits reports when the next may pass, not the end of its window (7.5 s)')
  t.same(out.map(c => c.kept), ['0 1 0', '0 2 0', '0 3 0', '0 4 0', '1 1 4', '1 1 4'], 'counted in place; a rejected request changes nothing')
  t.equal(check('s', 4, W, 0, sliding(out[4]?.kept), 15_000).ok, true, 'and it fits then')
  t.equal(check('s', 4, W, 0, sliding(out[4]?.kept), 14_999).ok, false, 'not a millisecond earlier')
})

t.test('sliding window: a full window waits into the next one', async t => {
  const out = run('s', 2, 1_000, 0, [100, 200, 300])
  t.same(out.map(c => c.ok), [true, true, false])
  // At 300 ms: the next window starts in 700 ms, and there 2·(1 − e/1000) + 1 ≤ 2 needs e ≥ 500 ms.
  t.equal(out[2]?.ms, 1_200)
  t.equal(out[0]?.ms, 1_900, 'an allowed request resets at the end of the next window, when it no longer weighs')
  t.equal(out[1]?.ms, 1_300, 'the last that fits: when the next may pass, in the next window')
})

t.test('sliding window: after an allowed request\'s reset the whole quota is free again, not a millisecond before', async t => {
  const W = 10_000
  // 5 per 10 s, requests at 2 s, 3 s and 9.5 s into window 0, then 1 s into window 1.
  for (const times of [[2_000], [2_000, 3_000], [2_000, 3_000, 9_500], [2_000, 3_000, 9_500, 11_000]]) {
    const out = run('s', 5, W, 0, times)
    const at = times[times.length - 1] as number
    const reset = at + (out[out.length - 1]?.ms as number)
    const kept = sliding(out[out.length - 1]?.kept)
    t.equal(check('s', 5, W, 0, kept, reset).free, 5, `${times.join(', ')}: 5 free at the reset (${reset} ms)`)
    t.ok(check('s', 5, W, 0, kept, reset - 1).free < 5, `${times.join(', ')}: not all of them a millisecond before`)
  }
})

t.test('the last request that fits reports the wait the next one\'s 429 would give', async t => {
  // 3 per 2 s: the fourth waits for 3·(1 − e/2000) + 1 ≤ 3 in the next window, e ≥ 667 ms.
  const sliding = run('s', 3, 2_000, 0, [0, 0, 0, 0])
  t.same(sliding.map(c => [c.ok, c.free, c.ms]), [[true, 3, 4_000], [true, 2, 4_000], [true, 1, 2_667], [false, 0, 2_667]])
  // 1 per second, bucket of 3: the fourth waits for the first token back, in 1 s (not until the bucket is full, 3 s).
  const bucket = run('t', 1, 1_000, 3, [0, 0, 0, 0])
  t.same(bucket.map(c => [c.ok, c.free, c.ms]), [[true, 3, 1_000], [true, 2, 2_000], [true, 1, 1_000], [false, 0, 1_000]])
})

t.test('sliding window bound: a burst from a fresh key lets through at most N·(1 + d/W)', async t => {
  // N = 10, W = 1 s; one request every 50 ms for 3 s (d = 3 s spans three window edges).
  const times = Array.from({ length: 60 }, (_, i) => 500 + i * 50)
  const out = run('s', 10, 1_000, 0, times)
  const passed = out.filter(c => c.ok).length
  t.ok(passed <= Math.floor(10 * (1 + 3_000 / 1_000)), `${passed} passed`)
  const inWindow = (k: number) => times.filter((at, i) => out[i]?.ok === true && Math.floor(at / 1_000) === k).length
  for (const k of [0, 1, 2, 3]) t.ok(inWindow(k) <= 10, `window ${k}: ${inWindow(k)} ≤ N`)
})

t.test('token bucket (GCRA): a burst, then one per emission interval', async t => {
  // 2 per second, bucket of 3: emission interval 500 ms.
  const out = run('t', 2, 1_000, 3, [0, 0, 0, 0, 499, 500, 500])
  t.same(out.map(c => c.ok), [true, true, true, false, false, true, false])
  t.same(out.map(c => c.free), [3, 2, 1, 0, 0, 1, 0])
  t.equal(out[3]?.ms, 500, 'the next token in 500 ms')
  t.equal(out[4]?.ms, 1, 'one ms before it')
  t.equal(out[1]?.ms, 1_000, 'an allowed request: until the bucket is full again')
  t.equal(out[2]?.ms, 500, 'the last token: until the next one, as the 429 after it says')
  t.same(out.map(c => c.kept), ['500.000', '1000.000', '1500.000', '1500.000', '1500.000', '2000.000', '2000.000'])
})

t.test('fixed window: counts per epoch-aligned window', async t => {
  const out = run('f', 2, 1_000, 0, [1_000, 1_400, 1_999, 2_000])
  t.same(out.map(c => c.ok), [true, true, false, true])
  t.same(out.map(c => c.ms), [1_000, 600, 1, 1_000])
  t.same(out.map(c => c.kept), ['1 1', '1 2', '1 2', '2 1'])
})

// The stores' TTLs drop a state before these cases arise; the algorithms do not count on it.
t.test('sliding window: a state older than the previous window counts nothing', async t => {
  // Window 2 (2000-2999 ms) had 2 of 2; at 4.5 s, in window 4, it is not the previous window.
  const old = sliding('2 2 0')
  t.same(check('s', 2, 1_000, 0, old, 4_500), { ok: true, free: 2, ms: 1_500 })
  const write = charge('s', 2, 1_000, old, 4_500)
  t.same({ state: String(write?.state), ttlMs: write?.ttlMs }, { state: '4 1 0', ttlMs: 1_500 })
})

t.test('token bucket: an arrival time in the past holds a full bucket, no more', async t => {
  // 2 per second, bucket of 3; last charged at 0 ms (next arrival 500), asked at 10 s.
  const old = new BucketState(500)
  t.same(check('t', 2, 1_000, 3, old, 10_000), { ok: true, free: 3, ms: 500 })
  const write = charge('t', 2, 1_000, old, 10_000)
  t.same({ state: String(write?.state), ttlMs: write?.ttlMs }, { state: '10500.000', ttlMs: 500 })
})
