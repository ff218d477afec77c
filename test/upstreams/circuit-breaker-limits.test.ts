import t, { type Test } from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { CircuitBreaker } from '../../src/upstreams/circuit-breaker.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts'

// A circuit breaker counts what passive ejection counts (not a 500: it shows a live target) and opens
// under the same limit (maxEjectionPercent, at least one: the last target available too, unlike an
// ejection), unless its target is down: clients that can make targets fail must not take the whole
// upstream out (docs/upstreams.md, Health).

/** Three targets answering `failing` to /fail*, 200 to anything else. */
async function targets (t: Test, failing: number): Promise<TestUpstream[]> {
  const ups = await Promise.all([0, 1, 2].map(async () => startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    res.writeHead(req.url?.startsWith('/fail') === true ? failing : 200).end()
  })))
  t.teardown(() => Promise.all(ups.map(u => u.close())))
  return ups
}

async function send (url: string, n: number): Promise<number[]> {
  const statuses: number[] = []
  for (let i = 0; i < n; i++) {
    const res = await request(url)
    await res.body.dump()
    statuses.push(res.statusCode)
  }
  return statuses
}

const BREAKER = 'circuitBreaker: { failureRate: 0.5, window: 10s, minRequests: 5, halfOpenAfter: 3s }'

async function gatewayFor (t: Test, urls: readonly string[], extra: string) {
  const gw = await startGateway(`upstreams:
  up:
    targets: [ ${urls.map(u => `{ url: "${u}" }`).join(', ')} ]
    ${BREAKER}
    whenAllUnhealthy: fail
${extra.replace(/^/gm, '    ')}
routes:
  - { name: r, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return { gw, up: gw.gateway.runtime.upstreams.get('up')! }
}

t.test('500s clients provoke open no breaker: the healthy paths keep their 200s', async t => {
  const ups = await targets(t, 500)
  const { gw, up } = await gatewayFor(t, ups.map(u => u.url), '')
  t.same(new Set(await send(`${gw.url}/fail`, 30)), new Set([500]))
  t.same(up.snapshot().targets.map(x => x.breaker), ['closed', 'closed', 'closed'], 'a 500 is an answer to the breaker too')
  t.same(await send(`${gw.url}/ok`, 6), [200, 200, 200, 200, 200, 200])
  t.notOk(gw.logs.some(l => l.msg === 'circuit breaker open'))
})

// The second: an ejection keeps the breakers of the others closed; the third: an open breaker keeps the others in.
for (const passive of ['passive: false', 'passive: { consecutiveFailures: 2, baseEjection: 1h, maxEjection: 1h }', 'passive: { consecutiveFailures: 8 }']) {
  t.test(`503s clients provoke open one breaker of three at most, ejections counted (${passive})`, async t => {
    const ups = await targets(t, 503)
    const { gw, up } = await gatewayFor(t, ups.map(u => u.url), `${passive}\nretries: false`)
    t.same(new Set(await send(`${gw.url}/fail`, 30)), new Set([503]))
    const out = up.snapshot().targets.filter(x => !x.healthy)
    t.equal(out.length, 1, 'maxEjectionPercent 50 of 3: one target out (breaker open or ejected), the others stay in')
    t.same(await send(`${gw.url}/ok`, 6), [200, 200, 200, 200, 200, 200])
  })
}

t.test('the lone target of an upstream answering 503: its breaker opens, requests fail at once', async t => {
  const [one] = await targets(t, 503)
  const { gw, up } = await gatewayFor(t, [one!.url], 'retries: false')
  await send(`${gw.url}/fail`, 6)
  t.same(up.snapshot().targets.map(x => x.breaker), ['open'], 'a breaker is there to fail fast: the last target is no exception')
  const res = await request(`${gw.url}/ok`)
  t.equal(res.statusCode, 503)
  t.match(await res.body.json(), { error: 'no_healthy_target' })
})

t.test('targets refusing connections all open, the last one too', async t => {
  // Nothing listens on port 1 (privileged) of these loopback addresses.
  const dead = ['http://127.0.0.1:1', 'http://127.0.0.2:1', 'http://127.0.0.3:1']
  const { gw, up } = await gatewayFor(t, dead, 'passive: false')
  const allOpen = () => up.snapshot().targets.every(x => x.breaker === 'open')
  for (let i = 0; i < 60 && !allOpen(); i++) await send(`${gw.url}/x`, 1)
  t.ok(allOpen(), 'every breaker opened')
  const res = await request(`${gw.url}/x`)
  t.equal(res.statusCode, 503)
  t.match(await res.body.json(), { error: 'no_healthy_target' })
})

t.test('the gate: asked at the threshold with whether the target looks down; a failed probe it refuses closes the breaker', async t => {
  const asked: boolean[] = []
  let allow = false
  const gate = (_b: CircuitBreaker, down: boolean) => { asked.push(down); return allow }
  const b = new CircuitBreaker({ failureRate: 0.5, windowMs: 1000, minRequests: 2, halfOpenAfterMs: 100 })
  t.equal(b.record(false, 0, 0, true, gate), undefined, 'under minRequests: not asked')
  t.equal(b.record(false, 1, 1, true, gate), undefined, 'refused: stays closed')
  t.equal(b.record(false, 2, 2, false, gate), undefined)
  t.same(asked, [true, false], 'down while every failure was unanswered')
  allow = true
  t.equal(b.record(false, 3, 3, false, gate), 'open', 'asked again at the next failure')
  b.dispatched(200)
  allow = false
  t.equal(b.record(false, 200, 201, false, gate), 'closed', 'a failed probe the upstream may not keep out: closed')
  t.ok(b.allows(202))
})
