import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { load, startBackends } from './backends.ts'

// Every target fails its health checks and answers 503 (a cause they share). Passive checks ejected
// targets that answered (up to maxEjectionPercent: none was available, so an ejection "took none
// out"), and they stayed out for 30 s once the outage ended: after recovery 2 of 4 targets got no
// requests. While none is available, only a target whose connections fail (a dead one) is ejected.

t.test('least-bad: 503s from every target failing its checks eject none; after recovery all four share', async t => {
  const backends = await startBackends(t, 4)
  const gw = await startGateway(`upstreams:
  up:
    targets: [ ${backends.map(b => `{ url: "${b.url}" }`).join(', ')} ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1, healthyAfter: 1 }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  t.ok(await until(() => up.targets.every(x => x.healthy)), 'all healthy at first')

  for (const b of backends) { b.healthy = false; b.status = 503 }
  t.ok(await until(() => up.targets.every(x => !x.healthy)), 'every target fails its checks')
  const outage = await load(`${gw.url}/x`, 80, 4)
  t.same(outage.statuses, { 503: 80 }, 'least-bad: every request reached a target, which answered 503')
  const now = performance.now()
  t.same(up.targets.filter(x => x.outlier.ejected(now)).map(x => x.url), [], 'no target ejected')

  for (const b of backends) { b.healthy = true; b.status = 200; b.hits = 0 }
  t.ok(await until(() => up.targets.every(x => x.healthy)), 'every target passes its checks again')
  const after = await load(`${gw.url}/x`, 40, 1)
  t.same(after.statuses, { 200: 40 })
  t.same(backends.map(b => b.hits), [10, 10, 10, 10], 'round-robin over all four again')
})
