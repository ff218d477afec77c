import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { Upstream, type Target } from '../../src/upstreams/upstream.ts'
import { load, startBackends } from './backends.ts'

// p2c-ewma counts failed tries in a target's latency: one that times out, or fails at once, must
// not look like the fastest (it had no answer to measure, so its estimate used to decay to 0).

async function gateway (t: { teardown (fn: () => unknown): void }, a: string, b: string) {
  const gw = await startGateway(`upstreams:
  up:
    balance: p2c-ewma
    passive: false
    timeouts: { response: 1s }
    targets: [ { url: "${a}" }, { url: "${b}" } ]
routes:
  - { name: all, match: { path: /* }, upstream: up }
`, { admin: true })
  t.teardown(() => gw.close())
  return gw
}

const latency = async (admin: string, url: string) => {
  const body = await (await request(`${admin}/upstreams`)).body.json() as { upstreams: Array<{ targets: Array<{ url: string, latencyMs: number }> }> }
  return body.upstreams[0]?.targets.find(x => x.url === url)?.latencyMs
}

t.test('p2c-ewma: a target whose requests time out gets no more traffic for it', async t => {
  const [a, b] = await startBackends(t, 2)
  a!.delayMs = 1_500 // never answers within the response timeout
  b!.delayMs = 30
  const gw = await gateway(t, a!.url, b!.url)
  const r = await load(`${gw.url}/x`, 20, 1)
  // The first tries find both without latency: A gets one (its timeout), then B wins every draw.
  t.ok((r.statuses[504] ?? 0) <= 1, `timeouts: ${r.statuses[504] ?? 0} of 20`)
  t.equal(r.backends.b, 20 - (r.statuses[504] ?? 0), 'the rest went to the target that answers')
  t.ok((await latency(gw.adminUrl as string, a!.url) ?? 0) >= 900, 'the timed-out target shows the time its try took')
})

t.test('p2c-ewma: a target answering 500 at once is not taken for the fastest', async t => {
  const [a, b] = await startBackends(t, 2)
  a!.status = 500
  b!.delayMs = 30
  const gw = await gateway(t, a!.url, b!.url)
  const r = await load(`${gw.url}/x`, 40, 1)
  // A is tried first (no estimate anywhere) or once B has one (twice it), then again only when an
  // answer of B slower than twice its estimate (a loaded machine) raises it past A's: each puts A at
  // twice B's answers again. Counted as fast, A would win every draw.
  t.ok((r.statuses[500] ?? 0) <= 6, `500s: ${r.statuses[500] ?? 0} of 40`)
  t.ok((await latency(gw.adminUrl as string, a!.url) ?? 0) >= 2 * 25, 'its estimate is at least twice the answering target\'s')
})

t.test('a failed try counts its time up to the response timeout, and at least twice the highest estimate', async t => {
  const up = new Upstream('up', { balance: 'p2c-ewma', timeouts: { response: '1s' }, targets: [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }] })
  t.teardown(() => up.close())
  const [a, b] = up.targets as [Target, Target]
  up.outcome(a, false, performance.now(), true)
  t.ok(a.latency.value < 5, `no estimate anywhere: a fast failure counts its own time (${a.latency.value})`)
  b.latency.observe(40, performance.now())
  up.outcome(a, false, performance.now(), true)
  t.ok(a.latency.value >= 79, `a fast failure: twice the highest estimate (${a.latency.value})`)
  up.outcome(b, false, performance.now() - 5 * 60_000, false) // a body broken after 5 minutes
  t.equal(b.latency.value, 1_000, 'a long failed try: the response timeout')
})

t.test('failures on every target do not feed on each other: each is measured against answers only', async t => {
  const up = new Upstream('up', { balance: 'p2c-ewma', passive: false, timeouts: { response: '1s' }, targets: [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }] })
  t.teardown(() => up.close())
  const [a, b] = up.targets as [Target, Target]
  const start = performance.now()
  a.latency.observe(1, start)
  b.latency.observe(40, start)
  // Measured against estimates failures had raised, each doubled the highest: Infinity after about a thousand.
  for (let i = 0; i < 2_000; i++) up.outcome(i % 2 === 0 ? a : b, false, performance.now(), true)
  for (const x of [a, b]) t.ok(x.latency.value >= 79 && x.latency.value <= 80, `${x.url}: twice the slowest answer (${x.latency.value})`)
  t.ok(b.latency.answers(performance.now()) <= 40, 'the answers\' estimate is left alone')
  // Answers again: the fast target's estimate falls below the slow one's (it decays by e every 10 s).
  const later = performance.now() + 10_000
  a.latency.observe(1, later)
  b.latency.observe(40, later)
  t.ok(a.latency.estimate(later) < b.latency.estimate(later), `latency sorts them again (${a.latency.estimate(later).toFixed(1)} < ${b.latency.estimate(later).toFixed(1)})`)
})

t.test('p2c-ewma: after failures on every target, the estimates stay finite and the fast target wins most requests again', async t => {
  const [fast, slow] = await startBackends(t, 2)
  slow!.delayMs = 40
  const gw = await gateway(t, fast!.url, slow!.url)
  const admin = gw.adminUrl as string
  await load(`${gw.url}/x`, 20, 1)
  fast!.status = slow!.status = 500
  const failing = await load(`${gw.url}/x`, 1_200, 2)
  t.same(failing.statuses, { 500: 1_200 })
  // Each failure used to double the highest estimate: Infinity (null in JSON) after about a thousand.
  for (const b of [fast!, slow!]) {
    const ms = await latency(admin, b.url)
    t.ok(typeof ms === 'number' && ms <= 2 * 1_000, `${b.name}: ${String(ms)} ms, at most twice the response timeout`)
  }
  fast!.status = slow!.status = 200
  await load(`${gw.url}/x`, 100, 1) // the penalties fade
  // Without failures the fast one takes about 85%; an even split is what latency no longer telling them apart gives.
  // Penalties and peaks fade with time (by e every 10 s), not with requests: on a loaded machine one stalled
  // try (a failure, or an answer) can leave the fast target's estimate above the slow one's for seconds,
  // while the slow one takes the requests. So rounds of 200 until one shows the fast target ahead again;
  // estimates at Infinity never fade (an even split every round), hence the bound.
  const statuses: Record<number, number> = {}
  const shares: string[] = []
  let share = 0
  for (const start = performance.now(); share <= 0.67 && performance.now() - start < 60_000;) {
    const r = await load(`${gw.url}/x`, 200, 1)
    for (const [status, n] of Object.entries(r.statuses)) statuses[Number(status)] = (statuses[Number(status)] ?? 0) + n
    share = (r.backends.a ?? 0) / 200
    shares.push(`${(share * 100).toFixed(0)}%`)
  }
  t.same(Object.keys(statuses), ['200'], 'every request answered')
  t.ok(share > 0.67, `the fast target: ${shares.join(', then ')} of requests`)
})
