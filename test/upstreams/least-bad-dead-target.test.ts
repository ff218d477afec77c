import t, { type Test } from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { deadPort, startUpstream, type TestUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

// Both targets fail their health checks (the checks' own dependency is down: what least-bad is for),
// and one of them is dead. Least-bad mode sent it half the requests for ever (502s): a connect error
// was never retried on the other least-bad target, and passive checks never ejected the dead one
// ("never the last available": none was available, so ejecting it took nothing out).

/** A live target whose health check fails (its dependency down), and a dead one. */
async function liveAndDead (t: Test): Promise<{ live: TestUpstream, dead: string }> {
  const live = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    res.writeHead(req.url === '/health' ? 503 : 200).end('live')
  })
  t.teardown(() => live.close())
  return { live, dead: `http://127.0.0.1:${await deadPort()}` }
}

t.test('least-bad: a dead target is retried past (connect error) and ejected; the live one answers every request', async t => {
  const { live, dead } = await liveAndDead(t)
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${live.url}" }, { url: "${dead}" } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`, { admin: true })
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  t.ok(await until(() => up.targets.every(x => !x.healthy)), 'both targets fail their checks')

  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const res = await request(`${gw.url}/x`)
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  t.same(statuses, Array(20).fill(200), 'every request answered by the live target')
  const admin = gw.adminUrl as string
  t.ok(await metricValue(admin, 'portcullis_upstream_retries_total{upstream="up",reason="connect-error"}') >= 1, 'connect errors retried on the other least-bad target')
  t.equal(await metricValue(admin, `portcullis_upstream_ejections_total{upstream="up",target="${dead}"}`), 1, 'the dead target ejected')
  t.equal(await metricValue(admin, `portcullis_upstream_ejections_total{upstream="up",target="${live.url}"}`), 0, 'not the live one')
  // Ejected, the dead target ranks behind the live one: no more tries on it, so no more retries.
  const retries = await metricValue(admin, 'portcullis_upstream_retries_total{upstream="up",reason="connect-error"}')
  for (let i = 0; i < 10; i++) await (await request(`${gw.url}/y`)).body.dump()
  t.equal(await metricValue(admin, 'portcullis_upstream_retries_total{upstream="up",reason="connect-error"}'), retries, 'once ejected, it gets no more requests')
})

t.test('least-bad: a POST whose connection to a dead target is refused is retried too (nothing was sent)', async t => {
  const { live, dead } = await liveAndDead(t)
  // The dead target first in turn for the first request; passive checks off, so it stays in.
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${dead}" }, { url: "${live.url}" } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 }
    passive: false
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  t.ok(await until(() => up.targets.every(x => !x.healthy)), 'both targets fail their checks')
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) {
    const res = await request(`${gw.url}/x`, { method: 'POST', body: 'hello' })
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  t.same(statuses, Array(6).fill(200), 'each refused try went to the live target')
})
