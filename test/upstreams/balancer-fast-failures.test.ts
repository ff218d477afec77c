import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { Target, type PoolSettings } from '../../src/upstreams/target.ts'
import { LeastConnections } from '../../src/upstreams/balancers/least-connections.ts'
import { load, startBackends } from './backends.ts'

// A target that fails at once always has nothing in flight: least-connections and p2c-ewma, which
// compare load, sent it most of the traffic under concurrency (91% and 82% 503s with two of three
// targets answering 503; passive ejection takes out one, the other stays in). Their recent failures
// must rank such a target behind the targets that answer.

async function gateway (t: { teardown (fn: () => unknown): void }, balance: string, urls: readonly string[]) {
  const gw = await startGateway(`upstreams:
  up:
    balance: ${balance}
    targets: [ ${urls.map(u => `{ url: "${u}" }`).join(', ')} ]
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return gw
}

for (const balance of ['least-connections', 'p2c-ewma']) {
  t.test(`${balance}: two targets answering 503 at once get few of 300 requests, 6 at a time`, async t => {
    const [a, b, c] = await startBackends(t, 3)
    a!.status = b!.status = 503
    c!.delayMs = 50
    const gw = await gateway(t, balance, [a!.url, b!.url, c!.url])
    const r = await load(`${gw.url}/x`, 300, 6)
    const failed = r.statuses[503] ?? 0
    // One failing target stays in (maxEjectionPercent); it fails about one try a second.
    t.ok(failed <= 45, `503s: ${failed} of 300 (${JSON.stringify(r.statuses)})`)
    t.equal((r.statuses[200] ?? 0) + failed, 300, 'every other request answered by the healthy target')
  })

  t.test(`${balance}: a target answering 500 at once (not counted by passive checks) gets few of 300 requests`, async t => {
    const [a, b, c] = await startBackends(t, 3)
    a!.status = 500
    b!.delayMs = c!.delayMs = 50
    const gw = await gateway(t, balance, [a!.url, b!.url, c!.url])
    const r = await load(`${gw.url}/x`, 300, 6)
    const failed = r.statuses[500] ?? 0
    t.ok(failed <= 30, `500s: ${failed} of 300 (${JSON.stringify(r.statuses)})`)
    t.ok((r.backends.b ?? 0) > 100 && (r.backends.c ?? 0) > 100, `the two that answer share the rest (${JSON.stringify(r.backends)})`)

    // Its failures fade (their count halves every second): once it answers again it gets its share back.
    a!.status = 200
    const shares: number[] = []
    for (const start = performance.now(); (shares.at(-1) ?? 0) < 0.2 && performance.now() - start < 15_000;) {
      const again = await load(`${gw.url}/x`, 60, 6)
      shares.push((again.backends.a ?? 0) / 60)
    }
    t.ok((shares.at(-1) ?? 0) >= 0.2, `the recovered target's share, round by round: ${shares.map(x => x.toFixed(2)).join(', ')}`)
  })
}

t.test('one failure among answers ranks a target behind an equal one for a second at most; then ties are shared again', async t => {
  const pool: PoolSettings = { connections: 1, pipelining: 1, keepAliveMs: 1000, connectMs: 1000, responseMs: 1000, idleMs: 1000 }
  const [a, b] = [1, 2].map(i => new Target(`http://127.0.0.1:${10_000 + i}`, `127.0.0.1:${10_000 + i}`, 1, 0, pool, undefined, undefined)) as [Target, Target]
  t.teardown(() => Promise.all([a.pool.close(), b.pool.close()]))
  const lc = new LeastConnections([a, b])
  const req = { clientIp: '127.0.0.1', headers: {}, path: '/' }
  const picks = (now: number) => Array.from({ length: 4 }, () => lc.pick(req, now, undefined) === a ? 'a' : 'b').join('')
  const start = performance.now()
  a.recentFailures.failed(start)
  t.equal(picks(start + 900), 'bbbb', 'behind the other at equal load')
  t.equal(picks(start + 1_001), 'abab', 'a second on, its factor is 1 again: exact ties, in turn')
  b.inFlight = 2
  a.recentFailures.failed(start + 2_000)
  t.equal(lc.pick(req, start + 2_000, undefined), a, 'one failure (x2) weighs less than the other\'s two requests in flight (3 against 2)')
  a.recentFailures.failed(start + 2_000)
  t.equal(lc.pick(req, start + 2_000, undefined), b, 'two in a row (x4) outweigh them')
  a.recentFailures.answered(start + 2_000)
  t.equal(lc.pick(req, start + 2_000, undefined), b, 'an answer lowers its failure fraction a little (x4 still)')
  for (let i = 0; i < 5; i++) a.recentFailures.answered(start + 2_000)
  t.equal(lc.pick(req, start + 2_000, undefined), a, 'six bring it to x2 again')
})
