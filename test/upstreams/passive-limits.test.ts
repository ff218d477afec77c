import t from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { load, startBackends } from './backends.ts'

// A client able to make targets answer 5xx (a request that hits an application bug) must not take a
// whole upstream out while its health checks pass: by default passive checks count only the gateway
// errors (502, 503, 504), never eject more than half the targets, and never the last one available.
// Targets that do not answer at all (down) are all ejected but the last available, whatever the percentage.

async function gateway (t: { teardown (fn: () => unknown): void }, bs: ReadonlyArray<{ url: string }>, passive: string): Promise<TestGateway> {
  const gw = await startGateway(`upstreams:
  up:
    targets: [ ${bs.map(b => `{ url: "${b.url}" }`).join(', ')} ]
    whenAllUnhealthy: fail
    passive: ${passive}
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return gw
}

const ejected = (gw: TestGateway) => gw.gateway.runtime.upstreams.get('up')!.snapshot().targets.filter(x => x.ejectedUntil !== null).length
const ejections = (gw: TestGateway) => gw.logs.filter(l => l.msg === 'target ejected after consecutive failures').length

t.test('500s a client triggers eject no target by default: the others keep answering', async t => {
  const bs = await startBackends(t, 3)
  const gw = await gateway(t, bs, '{}')
  for (const b of bs) b.status = 500
  t.same((await load(`${gw.url}/boom`, 30, 1)).statuses, { 500: 30 }, 'ten 500s from each target')
  t.equal(ejected(gw), 0, 'none ejected')
  for (const b of bs) b.status = 200
  t.same((await load(`${gw.url}/ok`, 9, 1)).backends, { a: 3, b: 3, c: 3 }, 'every target still takes its share')
})

t.test('statuses that count eject at most maxEjectionPercent of the targets (default 50: one of three)', async t => {
  const bs = await startBackends(t, 3)
  const gw = await gateway(t, bs, '{}')
  for (const b of bs) b.status = 503
  t.same((await load(`${gw.url}/boom`, 30, 1)).statuses, { 503: 30 })
  t.equal(ejected(gw), 1, 'one ejected')
  t.equal(ejections(gw), 1, 'one ejection logged')
  for (const b of bs) b.status = 200
  t.same((await load(`${gw.url}/ok`, 4, 1)).statuses, { 200: 4 }, 'the other two answer: no 503 no_healthy_target')
})

t.test('maxEjectionPercent: 100 still leaves the last available target in', async t => {
  const bs = await startBackends(t, 2)
  const gw = await gateway(t, bs, '{ consecutiveFailures: 1, maxEjectionPercent: 100 }')
  for (const b of bs) b.status = 503
  t.same((await load(`${gw.url}/boom`, 10, 1)).statuses, { 503: 10 })
  t.equal(ejected(gw), 1, 'one ejected, not both')
  for (const b of bs) b.status = 200
  t.same((await load(`${gw.url}/ok`, 2, 1)).statuses, { 200: 2 })
})

t.test('passive.statuses chooses the statuses that count: [500] ejects on a 500, not on a 503', async t => {
  const bs = await startBackends(t, 3)
  const gw = await gateway(t, bs, '{ consecutiveFailures: 1, statuses: [500] }')
  bs[0]!.status = 503
  t.same((await load(`${gw.url}/x`, 3, 1)).statuses, { 200: 2, 503: 1 }, 'round-robin: a answers 503 once')
  t.equal(ejected(gw), 0, 'a 503 is not listed: no ejection')
  bs[0]!.status = 500
  t.same((await load(`${gw.url}/x`, 3, 1)).statuses, { 200: 2, 500: 1 })
  t.equal(ejected(gw), 1, 'a 500 is: a is ejected')
  t.same((await load(`${gw.url}/x`, 4, 1)).backends, { b: 2, c: 2 })
})

t.test('dead targets (connections refused) are all ejected, beyond maxEjectionPercent: the live one answers every request', async t => {
  // Capped at one of three (no health checks, the default), the other dead target failed 22% of the requests for ever.
  const [live] = await startBackends(t, 1)
  const gw = await gateway(t, [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }, live!], '{ baseEjection: 5m }') // outlasts the test, however slow the machine
  await load(`${gw.url}/x`, 30, 1) // each dead target is first pick 10 times: 5 failures eject it
  t.equal(ejected(gw), 2, 'both dead targets ejected')
  t.same((await load(`${gw.url}/x`, 300, 1)).statuses, { 200: 300 }, 'then every request is answered')
  t.same((await load(`${gw.url}/x`, 2, 1)).backends, { a: 2 })
})

t.test('a request slow on every target (response timeouts) ejects one of three at most: the target took it, it is not down', async t => {
  const bs = await startBackends(t, 3)
  const gw = await startGateway(`upstreams:
  up:
    targets: [ ${bs.map(b => `{ url: "${b.url}" }`).join(', ')} ]
    timeouts: { response: 250ms }
    passive: { consecutiveFailures: 2, baseEjection: 5m }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  for (const b of bs) b.delayMs = 1_000
  t.same((await load(`${gw.url}/slow`, 12, 1)).statuses, { 504: 12 }, 'each target timed out 4 times, enough to eject it twice over')
  t.equal(ejected(gw), 1, 'one ejected, not two')
  for (const b of bs) b.delayMs = 0
  t.same((await load(`${gw.url}/ok`, 4, 1)).statuses, { 200: 4 })
})

t.test('a request that makes every target hang up (a reset) ejects one of three at most', async t => {
  const bs = await startBackends(t, 3)
  const gw = await gateway(t, bs, '{ baseEjection: 5m }')
  for (const b of bs) b.reset = true
  t.same((await load(`${gw.url}/crash`, 30, 1)).statuses, { 502: 30 })
  t.equal(ejected(gw), 1, 'one ejected, not two')
  for (const b of bs) b.reset = false
  t.same((await load(`${gw.url}/ok`, 4, 1)).statuses, { 200: 4 })
})
