import t from 'tap'
import { startUpstream } from '../helpers/upstream.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startHealthChecks } from '../../src/upstreams/health-check.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'

// Every target was checked at the same instant, each interval: with thousands of addresses (DNS) the
// checks' requests stalled the event loop for most of a second. They are spread over the interval.

t.test('the health checks of an upstream\'s targets are spread over the interval, not sent at once', async t => {
  const INTERVAL = 800
  /** Per target, when its checks arrived (performance.now()). */
  const arrivals: number[][] = []
  const urls = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    arrivals[i] = []
    const up = await startUpstream((req, res) => { if (req.url === '/health') arrivals[i]!.push(performance.now()); req.resume(); res.end() })
    t.teardown(() => up.close())
    return up.url
  }))
  const upstream = new Upstream('svc', { targets: urls.map(url => ({ url })), healthCheck: { path: '/health', interval: INTERVAL } }, upstreamEvents(memoryLogger().log, undefined))
  const stop = startHealthChecks([upstream], (u, url, healthy) => u.setTargetHealth(url, healthy))
  t.teardown(async () => { await stop(); await upstream.close() })
  t.ok(await until(() => arrivals.every(a => a.length >= 3), 10 * INTERVAL), 'every target is checked, round after round')
  // The second round, warm: the first's first check pays for a cold process's first connection.
  // Checks sent at once span a few ms; spread, ~700.
  const seconds = arrivals.map(a => a[1]!)
  const span = Math.max(...seconds) - Math.min(...seconds)
  t.ok(span >= INTERVAL / 4, `the second round's checks span ${Math.round(span)} ms of the ${INTERVAL} ms interval`)
  // Each target keeps its place in the round: its checks are an interval apart, give or take.
  for (const a of arrivals) t.ok(a[2]! - a[1]! >= INTERVAL / 2, `a target's next check comes ${Math.round(a[2]! - a[1]!)} ms after the one before`)
})

// A target DNS adds was appended to the round, checked last: nearly two intervals after it came
// (a dead address taking traffic all along). Its first check leads the next round.
t.test('a target added between rounds is checked first in the next round', async t => {
  const INTERVAL = 2000
  const arrivals: number[] = []
  const ups = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
    const up = await startUpstream((req, res) => { if (i === 0 && req.url === '/health') arrivals.push(performance.now()); req.resume(); res.end() })
    t.teardown(() => up.close())
    return up.url
  }))
  let addedCheckedAt = 0
  const added = await startUpstream((req, res) => { if (req.url === '/health' && addedCheckedAt === 0) addedCheckedAt = performance.now(); req.resume(); res.end() })
  t.teardown(() => added.close())
  const port = new URL(ups[7]!).port
  // The last entry is discovered (its first answer the only address): DNS replaces it below.
  const upstream = new Upstream('svc', { targets: [...ups.slice(0, 7).map(url => ({ url })), { url: `http://localhost:${port}`, resolve: 'dns' as const }], healthCheck: { path: '/health', interval: INTERVAL } }, upstreamEvents(memoryLogger().log, undefined))
  upstream.setTargets(7, [{ url: ups[7]!, host: `localhost:${port}`, weight: 1 }])
  const stop = startHealthChecks([upstream], (u, url, healthy) => u.setTargetHealth(url, healthy))
  t.teardown(async () => { await stop(); await upstream.close() })
  t.ok(await until(() => arrivals.length >= 1), 'the first round began')
  const addedAt = performance.now()
  upstream.setTargets(7, [{ url: added.url, host: `localhost:${port}`, weight: 1 }])
  t.ok(await until(() => addedCheckedAt > 0, 3 * INTERVAL), 'the added target is checked')
  // At the next round's start (under an interval from now); checked last it came ~1.9 intervals on.
  t.ok(addedCheckedAt - addedAt < 1.5 * INTERVAL, `checked ${Math.round(addedCheckedAt - addedAt)} ms after it was added`)
})
