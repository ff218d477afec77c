import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startBackends } from './backends.ts'
import { until } from '../helpers/wait.ts'

// Requests queued on a target that stops taking traffic (breaker open, ejected, failing its
// checks) go to the other targets' free slots, not to it (docs/upstreams.md, Admission).

const get = async (url: string, key?: string): Promise<{ status: number, backend?: string, at: number }> => {
  const res = await request(url, { headers: key === undefined ? {} : { 'x-key': key } })
  const body = await res.body.text()
  return { status: res.statusCode, backend: res.statusCode === 200 ? (JSON.parse(body) as { backend: string }).backend : undefined, at: performance.now() }
}

t.test('an open breaker: the requests queued on its target go to the other one', async t => {
  const [a, b] = await startBackends(t, 2)
  a!.status = 503
  a!.delayMs = b!.delayMs = 200
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${a!.url}" }, { url: "${b!.url}" } ]
    connections: 1
    retries: false
    passive: false
    circuitBreaker: { failureRate: 0.5, window: 10s, minRequests: 2, halfOpenAfter: 30s }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  const results = await Promise.all(Array.from({ length: 12 }, () => get(`${gw.url}/x`)))
  t.equal(a!.hits, 2, 'the target got the two failures that opened its breaker, nothing after')
  t.equal(results.filter(r => r.status === 503).length, 2)
  t.equal(results.filter(r => r.backend === 'b').length, 10, 'the rest, queued on either, answered by the other')
  t.equal(up.snapshot().targets[0]!.breaker, 'open', 'no request sent before halfOpenAfter turned it half-open')
})

t.test('consistent-hash, a target failing its checks: its keyed queue goes to the other target at once, not when its slot frees', async t => {
  const [a, b] = await startBackends(t, 2)
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${a!.url}" }, { url: "${b!.url}" } ]
    balance: consistent-hash
    hashOn: { header: x-key }
    connections: 1
    retries: false
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  let key = ''
  for (let i = 0; key === ''; i++) if ((await get(`${gw.url}/x`, `k${i}`)).backend === 'a') key = `k${i}`
  a!.delayMs = 1_500
  b!.delayMs = 50
  const pending = Array.from({ length: 4 }, () => get(`${gw.url}/x`, key))
  t.ok(await until(() => up.targets[0]!.waiting.length === 3 && a!.inFlight === 1), "the key's requests wait on its target")
  // As the health checks (or the cluster primary) do.
  t.ok(up.setTargetHealth(a!.url, false))
  const results = await Promise.all(pending)
  const fromA = results.filter(r => r.backend === 'a')
  t.equal(fromA.length, 1, 'the slow target answered only the request it had in flight')
  t.ok(results.every(r => r.status === 200))
  t.ok(results.filter(r => r.backend === 'b').every(r => r.at < fromA[0]!.at), 'the others did not wait for its slot')
})

t.test('every target down (whenAllUnhealthy: least-bad): the queued requests are still sent', async t => {
  const [a, b] = await startBackends(t, 2)
  a!.delayMs = b!.delayMs = 50
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${a!.url}" }, { url: "${b!.url}" } ]
    connections: 1
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  for (const x of [a!, b!]) t.ok(up.setTargetHealth(x.url, false))
  const results = await Promise.all(Array.from({ length: 6 }, () => get(`${gw.url}/x`)))
  t.same(results.map(r => r.status), Array(6).fill(200))
})
