import t from 'tap'
import { Target, type PoolSettings } from '../../src/upstreams/target.ts'
import { RoundRobin } from '../../src/upstreams/balancers/round-robin.ts'
import { LeastConnections } from '../../src/upstreams/balancers/least-connections.ts'
import { P2cEwma } from '../../src/upstreams/balancers/p2c-ewma.ts'
import { ConsistentHash } from '../../src/upstreams/balancers/consistent-hash.ts'
import { fnv1a, hash32, hash32Numbered } from '../../src/upstreams/balancers/hash.ts'
import { cookieValue, keyReader } from '../../src/upstreams/balancers/hash-key.ts'
import { createBalancer } from '../../src/upstreams/balancers/index.ts'
import { PeakEwma } from '../../src/upstreams/balancers/peak-ewma.ts'
import type { Balancer, BalancedRequest } from '../../src/upstreams/balancers/balancer.ts'

const POOL: PoolSettings = { connections: 1, pipelining: 1, keepAliveMs: 1000, connectMs: 1000, responseMs: 1000, idleMs: 1000 }

/** Targets on addresses nothing connects to: the balancers only read their state. */
function targets (t: { teardown (fn: () => unknown): void }, weights: number[]): Target[] {
  const list = weights.map((w, i) => new Target(`http://127.0.0.1:${10_001 + i}`, `127.0.0.1:${10_001 + i}`, w, 0, POOL, undefined, undefined))
  t.teardown(() => Promise.all(list.map(x => x.pool.close())))
  return list
}

const req = (over: Partial<BalancedRequest> = {}): BalancedRequest => ({ clientIp: '127.0.0.1', headers: {}, path: '/', ...over })

function counts (b: Balancer, list: Target[], n: number, make: (i: number) => BalancedRequest = () => req()): number[] {
  const c = list.map(() => 0)
  for (let i = 0; i < n; i++) {
    const picked = b.pick(make(i), performance.now(), undefined)
    if (picked !== undefined) c[list.indexOf(picked)]!++
  }
  return c
}

t.test('smooth weighted round-robin interleaves as nginx does and is exact per cycle', async t => {
  const list = targets(t, [5, 1, 1])
  const rr = new RoundRobin(list)
  const seq = Array.from({ length: 7 }, () => list.indexOf(rr.pick(req(), performance.now(), undefined) as Target))
  t.same(seq, [0, 0, 1, 0, 2, 0, 0], 'nginx sequence for weights 5,1,1: a a b a c a a')
  t.same(counts(rr, list, 700), [500, 100, 100], 'exactly the weights over whole cycles')
})

t.test('round-robin skips unavailable and excluded targets', async t => {
  const list = targets(t, [1, 1, 1])
  const rr = new RoundRobin(list)
  list[1]!.healthy = false
  t.same(counts(rr, list, 100), [50, 0, 50])
  const now = performance.now()
  list[0]!.outlier.ejectedUntil = now + 60_000
  t.equal(rr.pick(req(), now, undefined), list[2], 'ejected target skipped')
  t.equal(rr.pick(req(), now, [list[2]!]), undefined, 'nothing left once the last one is excluded')
})

t.test('weighted least-connections prefers the least loaded per weight', async t => {
  const list = targets(t, [1, 2, 1])
  const lc = new LeastConnections(list)
  list[0]!.inFlight = 3
  list[1]!.inFlight = 4 // (4+1)/2 = 2.5
  list[2]!.inFlight = 3 // (3+1)/1 = 4
  t.equal(lc.pick(req(), performance.now(), undefined), list[1])
  list[1]!.inFlight = 10
  const tied = counts(lc, list, 30)
  t.ok(tied[0]! > 0 && tied[2]! > 0 && tied[1] === 0, `ties (4 vs 4) are shared, the loaded one gets none: ${tied.join(', ')}`)
  list.forEach(x => { x.inFlight = 0 })
  const even = targets(t, [1, 1, 1])
  t.same(counts(new LeastConnections(even), even, 300), [100, 100, 100], 'at rest, equal targets share evenly')
})

t.test('least-connections skips unavailable and excluded targets', async t => {
  const list = targets(t, [1, 1, 1])
  const lc = new LeastConnections(list)
  list[1]!.healthy = false
  const c = counts(lc, list, 100)
  t.same(c, [50, 0, 50], 'the unhealthy target gets nothing, though it has no request in flight; the other two share evenly')
  t.equal(lc.pick(req(), performance.now(), [list[0]!, list[2]!]), undefined, 'nothing once the others are excluded')
})

t.test('balance: least-connections is least-connections, not latency-based', async t => {
  const list = targets(t, [1, 1])
  const now = performance.now()
  list[0]!.latency.observe(500, now)
  list[1]!.latency.observe(5, now)
  // Nothing in flight: least-connections shares evenly whatever the latency; p2c-ewma would send all to the fast one.
  t.same(counts(createBalancer({ balance: 'least-connections', targets: [] }, list), list, 100), [50, 50])
  t.same(counts(createBalancer({ balance: 'p2c-ewma', targets: [] }, list), list, 100), [0, 100])
})

t.test('p2c skips unavailable and excluded targets; one left is always picked, none gives undefined', async t => {
  const list = targets(t, [1, 1, 1])
  const p2c = new P2cEwma(list)
  list[0]!.healthy = false
  const c = counts(p2c, list, 300)
  t.equal(c[0], 0, 'the unhealthy target gets nothing')
  t.equal(c[1]! + c[2]!, 300, `every request went to a usable target (${c.join(', ')})`)
  t.equal(p2c.pick(req(), performance.now(), [list[1]!]), list[2], 'the only usable target left')
  t.equal(p2c.pick(req(), performance.now(), [list[1]!, list[2]!]), undefined, 'none left')
})

t.test('peak EWMA: a slower answer is taken at once, a faster one pulls the estimate down over 10 s', async t => {
  const e = new PeakEwma()
  e.observe(100, 5_000)
  t.equal(e.value, 100, 'slower than the average: taken as is')
  e.observe(20, 15_000) // 10 s later: weight of the old value e^-1 = 0.3679
  t.equal(e.value.toFixed(2), '49.43', '100 x 0.3679 + 20 x 0.6321')
  e.observe(20, 15_000) // no time passed: the old value keeps all its weight
  t.equal(e.value.toFixed(2), '49.43')
  e.observe(60, 15_000)
  t.equal(e.value, 60, 'a peak again')
})

t.test('peak EWMA: a failed try\'s penalty moves the estimate, not that of answers; NaN, Infinity or a negative time is left out', async t => {
  const e = new PeakEwma()
  e.observe(40, 5_000)
  e.failed(80, 5_000)
  t.equal(e.value, 80, 'a penalty above the estimate: taken as is')
  t.equal(e.answers(5_000), 40, 'the answers\' estimate keeps the answer')
  t.equal(e.answers(15_000).toFixed(2), '14.72', 'and decays as the estimate does')
  for (const bad of [Infinity, Number.NaN, -5]) {
    e.observe(bad, 6_000)
    e.failed(bad, 6_000)
  }
  t.equal(e.value, 80, 'an Infinity would never decay, a NaN would spread to every later value')
  t.equal(e.answers(5_000), 40)
  e.observe(20, 15_000)
  t.equal(e.value.toFixed(2), '42.07', 'answers pull it down again: 80 x 0.3679 + 20 x 0.6321')
})

t.test('p2c with peak EWMA sends most traffic to the faster target, some to the other', async t => {
  const list = targets(t, [1, 1])
  const now = performance.now()
  list[0]!.latency.observe(5, now)
  list[1]!.latency.observe(200, now)
  const c = counts(new P2cEwma(list), list, 1000)
  t.same(c, [1000, 0], 'with two targets both are always compared: the faster one wins')
  list[0]!.inFlight = 100 // 5 x 101 > 200 x 1
  t.same(counts(new P2cEwma(list), list, 100), [0, 100], 'load counts as much as latency')
  const three = targets(t, [1, 1, 1])
  three[2]!.latency.observe(500, now)
  const c3 = counts(new P2cEwma(three), three, 3000)
  // The slow one wins only when it is not drawn at all, which p2c never does with a pair including it.
  t.equal(c3[2], 0, 'the slow target of three gets nothing while the other two are fast')
  t.ok(c3[0]! > 1200 && c3[1]! > 1200, `the two fast ones share (${c3.join(', ')})`)
  t.ok(list[1]!.latency.estimate(now + 60_000) < 1, 'an old slow estimate decays, so the target is tried again')
})

t.test('consistent hashing: a leaving target moves only its own keys, so 1 - 1/N of keys stay (on average over which leaves)', async t => {
  const KEYS = 10_000
  const readKey = keyReader({ header: 'x-user' })
  const keyed = (i: number) => req({ headers: { 'x-user': `user-${i}` } })
  const pickAll = (b: Balancer) => Array.from({ length: KEYS }, (_, i) => b.pick(keyed(i), performance.now(), undefined))
  for (const N of [3, 5, 10]) {
    const list = targets(t, Array(N).fill(1))
    const ring = new ConsistentHash(list, readKey)
    const before = pickAll(ring)
    const spread = list.map(x => before.filter(b => b === x).length)
    t.ok(spread.every(c => c > KEYS / N * 0.75 && c < KEYS / N * 1.25), `N=${N}: keys spread within 25% of even: ${spread.join(', ')}`)
    // Each target leaves in turn. Only its own keys move, so the share that stays is 1 - its share:
    // 1 - 1/N give or take the ring's unevenness (above) for one leaver, exactly 1 - 1/N over all.
    let stayedTotal = 0
    const kept: string[] = []
    for (const [i, leaving] of list.entries()) {
      leaving.healthy = false
      const after = pickAll(ring)
      leaving.healthy = true
      const stayed = after.filter((x, k) => x === before[k]).length
      t.equal(stayed, KEYS - (spread[i] as number), `N=${N}, target ${i} leaves: its keys move, no other key does`)
      t.ok(after.every(x => x !== leaving), 'the unavailable target gets no key')
      stayedTotal += stayed
      kept.push((stayed / KEYS).toFixed(4))
    }
    t.ok(stayedTotal >= (N - 1) * KEYS, `N=${N}: ${(stayedTotal / N / KEYS).toFixed(4)} of keys stay on average (1 - 1/N = ${(1 - 1 / N).toFixed(4)}); per leaver ${kept.join(', ')}`)
  }

  const list = targets(t, Array(5).fill(1))
  const ring = new ConsistentHash(list, readKey)
  const before = pickAll(ring)
  const leaving = list[2]!
  leaving.healthy = false
  const after = pickAll(ring)
  // The same when the target is gone from the list (DNS removed it): the ring is rebuilt without it.
  const rebuilt = new ConsistentHash(list.filter(x => x !== leaving), readKey)
  t.same(pickAll(rebuilt), after, 'rebuilding without the target maps every key as skipping it did')

  leaving.healthy = true
  t.same(pickAll(ring), before, 'when it returns, its keys come back to it')
})

t.test('consistent hashing: a key maps to the same target in every version and process (the hash is fixed)', async t => {
  // Rolling upgrades and workers keep a key on its target only if the mapping never changes:
  // these are the targets of user-0 .. user-11 over http://127.0.0.1:10001, 10002, 10003.
  const list = targets(t, [1, 1, 1])
  const ring = new ConsistentHash(list, keyReader({ header: 'x-user' }))
  const picked = Array.from({ length: 12 }, (_, i) => list.indexOf(ring.pick(req({ headers: { 'x-user': `user-${i}` } }), performance.now(), undefined) as Target))
  t.same(picked, [1, 1, 0, 0, 2, 0, 2, 0, 0, 0, 1, 1])
})

t.test('consistent hashing follows the weights: weight 3 gets about 3/4 of the keys against weight 1', async t => {
  const list = targets(t, [1, 3])
  const ring = new ConsistentHash(list, keyReader({ header: 'x-user' }))
  const c = counts(ring, list, 10_000, i => req({ headers: { 'x-user': `user-${i}` } }))
  t.ok(c[1]! > 6_500 && c[1]! < 8_500, `weight 3: ${c[1]} of 10000 keys, weight 1: ${c[0]}`)
})

t.test('consistent hashing keys: header, cookie, client IP, path; keyless requests spread', async t => {
  const list = targets(t, [1, 1, 1])
  const same = (hashOn: Parameters<typeof keyReader>[0], a: BalancedRequest, b: BalancedRequest) => {
    const ring = new ConsistentHash(list, keyReader(hashOn))
    return ring.pick(a, performance.now(), undefined) === ring.pick(b, performance.now(), undefined)
  }
  t.ok(same({ cookie: 'sid' }, req({ headers: { cookie: 'a=1; sid=abc' } }), req({ headers: { cookie: 'sid=abc; z=9' } })))
  t.ok(same({ clientIp: true }, req({ clientIp: '10.0.0.7', path: '/a' }), req({ clientIp: '10.0.0.7', path: '/b' })))
  t.ok(same({ path: true }, req({ path: '/x', clientIp: '1.1.1.1' }), req({ path: '/x', clientIp: '2.2.2.2' })))
  t.equal(cookieValue('a=1; sid=abc; sidx=2', 'sid'), 'abc')
  t.equal(cookieValue('sidx=2', 'sid'), undefined)
  const ring = new ConsistentHash(list, keyReader({ header: 'x-user' }))
  t.ok(counts(ring, list, 300).every(c => c > 50), 'requests without the key are spread over all targets')
})

t.test('consistent hashing: requests without a key are spread by weighted round-robin, evenly whatever the number of targets', async t => {
  // A cursor stepping 161 points around a ring of 160 x sum(weights) visited a fraction of the
  // points when that sum was a multiple of 7 or 23: 7 equal targets got 0.66 to 1.40 of their share.
  for (const n of [7, 23]) {
    const list = targets(t, Array(n).fill(1))
    t.same(counts(new ConsistentHash(list, keyReader({ header: 'x-user' })), list, 100 * n), Array(n).fill(100), `${n} equal targets: 100 each`)
  }
  const weighted = targets(t, [5, 1, 1])
  t.same(counts(new ConsistentHash(weighted, keyReader({ header: 'x-user' })), weighted, 700), [500, 100, 100], 'weights 5, 1, 1: exactly their shares')
})

t.test('consistent hashing: the ring is bounded, whatever the weights (it is built on every DNS change and reload)', async t => {
  const readKey = keyReader({ header: 'x-user' })
  // 160 points per unit of weight made 1.6 million points of 10 targets at weight 1000, built in seconds.
  const size = (weights: number[]) => new ConsistentHash(targets(t, weights), readKey).size
  t.equal(size([3, 1]), 640, 'small weights: 160 points per unit')
  t.equal(size(Array(10).fill(1000)), 60_000, '10 x weight 1000: 6 points per unit (65,536 / 10,000, rounded down)')
  t.equal(size(Array(50).fill(100)), 65_000, '50 x weight 100: 13 per unit')
  t.equal(size(Array.from({ length: 40 }, (_, i) => 1000 - i)), 39_220, '40 weights 961..1000 (sum 39,220): 1 per unit')
  t.equal(size(Array(100).fill(1000)), 65_500, '100 x weight 1000 (sum past 65,536): 655 each, in proportion')
  // Scaled down, the points still follow the weights.
  const skewed = targets(t, [1000, 997, 3])
  const c = counts(new ConsistentHash(skewed, readKey), skewed, 20_000, i => req({ headers: { 'x-user': `user-${i}` } }))
  t.ok(c[0]! > 8_000 && c[0]! < 12_000 && c[1]! > 8_000 && c[1]! < 12_000 && c[2]! < 200, `weights 1000, 997, 3: ${c.join(', ')} of 20000 keys`)
})

t.test('consistent hashing: a small weight change moves a few keys, all to or from that target', async t => {
  // Weights divided by their GCD made 100, 100 a ring of 1, 1 units and 100, 99 one of 100, 99:
  // a ring other than the one before, that moved half the keys (87% for 10 x 100 with one at 101).
  const KEYS = 20_000
  const readKey = keyReader({ header: 'x-user' })
  const owners = (weights: number[]) => {
    const list = targets(t, weights)
    const ring = new ConsistentHash(list, readKey)
    return Array.from({ length: KEYS }, (_, i) => list.indexOf(ring.pick(req({ headers: { 'x-user': `user-${i}` } }), performance.now(), undefined) as Target))
  }
  for (const [change, from, to, changed] of [
    ['100, 100 -> 100, 99', [100, 100], [100, 99], 1],
    ['10 x 100, the last -> 101', Array(10).fill(100), [...Array(9).fill(100), 101], 9],
    ['1000, 500, 250 -> 1000, 500, 251', [1000, 500, 250], [1000, 500, 251], 2]
  ] as Array<[string, number[], number[], number]>) {
    const before = owners(from)
    const after = owners(to)
    const moved = before.flatMap((b, k) => b === after[k] ? [] : [[b, after[k]]])
    t.ok(moved.length < KEYS * 0.02, `${change}: ${moved.length} of ${KEYS} keys moved`)
    t.ok(moved.every(m => m.includes(changed)), 'each to or from the target whose weight changed')
  }
})

t.test('a ring point\'s hash is that of its URL#n, computed without building the string', async t => {
  const url = fnv1a('http://10.0.0.5:3000')
  for (const n of [0, 1, 9, 10, 11, 99, 100, 159, 1000, 65_535, 159_999]) t.equal(hash32Numbered(url, n), hash32(`http://10.0.0.5:3000#${n}`), `#${n}`)
})

t.test('consistent hashing: an empty or blank key is no key, spread as a missing one', async t => {
  const list = targets(t, [1, 1, 1])
  const spread = (hashOn: Parameters<typeof keyReader>[0], r: BalancedRequest) => counts(new ConsistentHash(list, keyReader(hashOn)), list, 300, () => r)
  for (const [hashOn, r] of [
    [{ header: 'x-user' }, req({ headers: { 'x-user': '' } })],
    [{ header: 'x-user' }, req({ headers: { 'x-user': ['', 'abc'] } })],
    [{ cookie: 'sid' }, req({ headers: { cookie: 'a=1; sid=; z=9' } })],
    [{ cookie: 'sid' }, req({ headers: { cookie: 'sid= ' } })],
    [{ clientIp: true }, req({ clientIp: '' })]
  ] as const) {
    const c = spread(hashOn, r)
    t.ok(c.every(n => n > 50), `${JSON.stringify(hashOn)} ${JSON.stringify(r.headers)}: ${c.join(', ')}`)
  }
  t.equal(keyReader({ cookie: 'sid' })(req({ headers: { cookie: 'sid=abc' } })), 'abc', 'a key is read as it was')
})

t.test('load-aware balancers count queued requests; roomOnly skips targets with no free slot', async t => {
  const list = targets(t, [1, 1])
  const waiter = { waitPrev: undefined, waitNext: undefined, movable: true, admit () {} }
  list[0]!.waiting.push(waiter) // both full (capacity 1), one also has a request queued
  list[0]!.inFlight = list[1]!.inFlight = 1
  t.same(counts(new LeastConnections(list), list, 10), [0, 10], 'least-connections: the target without a queue')
  t.same(counts(new P2cEwma(list), list, 10), [0, 10], 'p2c: the target without a queue')
  list[1]!.inFlight = 0
  for (const b of [new RoundRobin(list), new LeastConnections(list), new P2cEwma(list)]) {
    t.equal(b.pick(req(), performance.now(), undefined, true), list[1], 'only the target with room')
  }
  list[1]!.inFlight = 1
  t.equal(new RoundRobin(list).pick(req(), performance.now(), undefined, true), undefined, 'none with room')
  list[0]!.waiting.remove(waiter)
})
