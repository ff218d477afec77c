import t from 'tap'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startHealthChecks } from '../../src/upstreams/health-check.ts'
import { startGateway } from '../helpers/gateway.ts'
import { load, startBackends } from './backends.ts'
import { until } from '../helpers/wait.ts'

t.test('the health-check runner only reports transitions; the caller decides where state goes', async t => {
  const bs = await startBackends(t, 2)
  const upstream = new Upstream('up', {
    targets: bs.map(b => ({ url: b.url })),
    healthCheck: { path: '/health', interval: 300, timeout: 250, unhealthyAfter: 3, healthyAfter: 1, expectStatus: ['2xx'] }
  })
  t.teardown(() => upstream.close())
  const events: string[] = []
  // As a cluster primary would: record (and broadcast) instead of setting the state itself.
  const stop = startHealthChecks([upstream], (u, url, healthy) => { events.push(`${u.name} ${url} ${healthy}`) })
  t.ok(await until(() => bs.every(b => b.checks >= 2), 5_000), 'each target was checked twice...')
  t.same(events, [], '...and, healthy, there was nothing to report')
  bs[1]!.healthy = false
  t.ok(await until(() => events.length === 1, 5_000))
  t.same(events, [`up ${bs[1]!.url} false`])
  t.ok(upstream.targets[1]!.healthy, 'the runner did not touch the upstream itself')
  bs[1]!.healthy = true
  t.ok(await until(() => events.length === 2, 5_000))
  t.equal(events[1], `up ${bs[1]!.url} true`)
  await bs[0]!.kill()
  t.ok(await until(() => events.length === 3, 5_000), 'a dead target fails its checks')
  t.equal(events[2], `up ${bs[0]!.url} false`)
  await stop()
  bs[1]!.healthy = false
  const checks = bs[1]!.checks
  // Asserting that nothing happens: two intervals and more, in which a running checker would have reported b.
  await new Promise(resolve => setTimeout(resolve, 700))
  t.equal(bs[1]!.checks, checks, 'no check after stop')
  t.equal(events.length, 3, 'nothing reported after stop')
})

t.test('snapshot() and metrics show targets, health, ejections, retries and connections', async t => {
  const bs = await startBackends(t, 2)
  await bs[1]!.kill()
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${bs[0]!.url}", weight: 3 }, { url: "${bs[1]!.url}" } ]
    circuitBreaker: { minRequests: 100 }
    passive: { consecutiveFailures: 2 }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const r = await load(`${gw.url}/x`, 20, 2)
  t.same(r.statuses, { 200: 20 })
  const snap = gw.gateway.runtime.upstreams.get('up')!.snapshot()
  t.same(JSON.parse(JSON.stringify(snap)), snap, 'JSON-able')
  t.match(snap, {
    name: 'up',
    balance: 'round-robin',
    targets: [
      { url: bs[0]!.url, weight: 3, healthy: true, ejectedUntil: null, breaker: 'closed', inFlight: 0 },
      { url: bs[1]!.url, weight: 1, healthy: false, down: ['ejected'], checksPassing: true, ejectedUntil: String, breaker: 'closed', inFlight: 0 }
    ]
  })
  t.ok(snap.targets[0]!.connections.open >= 1, 'the live target has connections open')
  t.ok(snap.targets[0]!.latencyMs > 0, 'and a latency estimate')
  const text = await gw.metrics.registry.metrics()
  t.match(text, `portcullis_upstream_target_healthy{upstream="up",target="${bs[0]!.url}"} 1`)
  t.match(text, `portcullis_upstream_target_healthy{upstream="up",target="${bs[1]!.url}"} 0`)
  t.match(text, `portcullis_upstream_ejections_total{upstream="up",target="${bs[1]!.url}"} 1`)
  t.match(text, /portcullis_upstream_retries_total\{upstream="up",reason="connect-error"\} [1-9]/)
  t.match(text, `portcullis_upstream_breaker_state{upstream="up",target="${bs[0]!.url}"} 0`)
  t.match(text, `portcullis_upstream_connections_in_use{upstream="up",target="${bs[0]!.url}"} 0`)
})
