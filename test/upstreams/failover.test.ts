import t, { type Test } from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { load, startBackends, type Backend } from './backends.ts'
import { until } from '../helpers/wait.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { request } from 'undici'

const route = `
routes:
  - name: all
    match: { path: /* }
    upstream: up
`
const targets = (bs: Backend[]) => `    targets:\n${bs.map(b => `      - { url: "${b.url}" }`).join('\n')}`

t.test('defaults (no retry keys): a dead target costs no client errors for idempotent requests', async t => {
  const bs = await startBackends(t, 3)
  await bs[1]!.kill()
  const gw = await startGateway(`upstreams:\n  up:\n${targets(bs)}\n${route}`)
  t.teardown(() => gw.close())
  const r = await load(`${gw.url}/x`, 300, 6)
  t.same(r.statuses, { 200: 300 }, 'every request answered 200: connect errors were retried on another target')
  t.equal(r.backends.b, undefined)
  t.ok(await waitForLog(gw.logs, { msg: 'target ejected after consecutive failures', target: bs[1]!.url }), 'passive ejection kicked in (on by default)')
  const snap = gw.gateway.runtime.upstreams.get('up')!.snapshot()
  t.ok(snap.targets.find(x => x.url === bs[1]!.url)?.ejectedUntil, 'the snapshot shows the ejection')
})

t.test('killing a target under steady load, default retries: zero client-visible errors; once back it gets traffic again', async t => {
  const bs = await startBackends(t, 3)
  for (const b of bs) b.delayMs = 3 // so requests are in flight when the kill comes
  // No `retries`: the default (one retry on connect-error or reset) must cover the requests in flight.
  const gw = await startGateway(`upstreams:
  up:
${targets(bs)}
    healthCheck: { path: /health, interval: 200ms, timeout: 180ms, unhealthyAfter: 3, healthyAfter: 1 }
    passive: { consecutiveFailures: 3, baseEjection: 300ms, maxEjection: 1s }
${route}`)
  t.teardown(() => gw.close())
  const victim = bs[1]!
  let killedAt = -1
  // Bound: 1200 requests, 12 in flight; the kill comes after 400 have completed, as soon as the
  // victim has requests in hand (all three answer in step: when one completes, it is often idle).
  const during = await load(`${gw.url}/x`, 1200, 12, {
    after: async done => {
      if (done !== 400) return
      while (victim.inFlight === 0) await new Promise(resolve => setImmediate(resolve))
      killedAt = victim.hits
      await victim.kill()
    }
  })
  t.same(during.statuses, { 200: 1200 }, 'all 1200 requests answered 200 across the kill')
  t.ok(killedAt > 0 && victim.hits === killedAt, `the killed backend served ${killedAt} before, none after`)
  const retried = (await gw.metrics.upstreamRetries.get()).values.map(v => `${v.labels.reason}: ${v.value}`)
  t.ok(retried.length > 0, `requests that met the dead target were retried (${retried.join(', ')})`)
  t.ok(retried.some(r => r.startsWith('reset')), 'among them requests in flight on it when it died')

  await victim.revive()
  const up = gw.gateway.runtime.upstreams.get('up')!
  t.ok(await until(() => up.snapshot().targets.every(x => x.healthy && x.ejectedUntil === null), 5_000), 'health checks mark it healthy, its ejection runs out')
  const after = await load(`${gw.url}/x`, 300, 6)
  t.same(after.statuses, { 200: 300 })
  t.ok((after.backends.b ?? 0) >= 80, `the recovered backend gets its share again (${after.backends.b ?? 0} of 300)`)
})

t.test('active health checks: an unhealthy target gets no traffic until it recovers', async t => {
  const bs = await startBackends(t, 2)
  const gw = await startGateway(`upstreams:
  up:
${targets(bs)}
    healthCheck: { path: /health, interval: 200ms, timeout: 180ms, unhealthyAfter: 3, healthyAfter: 2 }
${route}`)
  t.teardown(() => gw.close())
  const up = gw.gateway.runtime.upstreams.get('up')!
  bs[0]!.healthy = false
  t.ok(await until(() => up.targets[0]!.healthy === false, 5_000), 'marked unhealthy after 3 failed checks')
  const r = await load(`${gw.url}/x`, 50, 2)
  t.same(r.backends, { b: 50 }, 'no traffic to the unhealthy one')
  bs[0]!.healthy = true
  t.ok(await until(() => up.targets[0]!.healthy, 5_000), 'healthy again after 2 passed checks')
  const back = await load(`${gw.url}/x`, 50, 2)
  t.same(back.backends, { a: 25, b: 25 })
})

t.test('whenAllUnhealthy: fail answers 503 no_healthy_target; least-bad still tries', async t => {
  const bs = await startBackends(t, 2)
  const gw = await startGateway(`upstreams:
  strict:
${targets(bs)}
    whenAllUnhealthy: fail
  lenient:
${targets(bs)}
routes:
  - { name: strict, match: { path: /strict }, upstream: strict }
  - { name: lenient, match: { path: /lenient }, upstream: lenient }
`)
  t.teardown(() => gw.close())
  for (const name of ['strict', 'lenient']) {
    const up = gw.gateway.runtime.upstreams.get(name)!
    // As the cluster primary does for workers: state set from outside.
    for (const b of bs) t.ok(up.setTargetHealth(b.url, false))
    t.notOk(up.setTargetHealth(bs[0]!.url, false), 'no change, nothing reported')
  }
  const strict = await load(`${gw.url}/strict`, 3, 1)
  t.same(strict.statuses, { 503: 3 })
  const res = await fetch(`${gw.url}/strict`)
  t.equal(res.headers.get('retry-after'), '5', 'clients that back off on Retry-After do')
  t.match(await res.json(), { error: 'no_healthy_target' })
  const lenient = await load(`${gw.url}/lenient`, 4, 1)
  t.same(lenient.statuses, { 200: 4 }, 'least-bad: the targets still answer')
})

t.test('whenAllUnhealthy: least-bad sends to the target most likely to answer, wherever it is listed', async t => {
  const bs = await startBackends(t, 2)
  const [a, b] = bs as [Backend, Backend]
  // In each upstream one target fails its health checks and the other is only ejected (for 10
  // minutes, after one 503): the ejected one is less bad, listed second in one and first in the other.
  const upstream = (name: string, order: Backend[]) => `  ${name}:
    targets: [ ${order.map(x => `{ url: "${x.url}" }`).join(', ')} ]
    passive: { consecutiveFailures: 1, baseEjection: 10m, maxEjection: 10m }
    retries: false`
  const gw = await startGateway(`upstreams:
${upstream('ab', [a, b])}
${upstream('ba', [b, a])}
routes:
  - { name: ab, match: { path: /ab }, upstream: ab }
  - { name: ba, match: { path: /ba }, upstream: ba }
`)
  t.teardown(() => gw.close())
  // Ejected first: passive checks never eject the last available target.
  b.status = 503
  t.same((await load(`${gw.url}/ab`, 2, 1)).statuses, { 200: 1, 503: 1 }, 'ab: a answers, then b fails once...')
  t.same((await load(`${gw.url}/ba`, 1, 1)).statuses, { 503: 1 }, 'ba: b fails once')
  t.equal(b.hits, 2, '...and is ejected from both')
  for (const name of ['ab', 'ba']) t.ok(gw.gateway.runtime.upstreams.get(name)!.setTargetHealth(a.url, false), `${name}: then a unhealthy`)
  const aHits = a.hits
  b.status = 200
  t.same((await load(`${gw.url}/ab`, 3, 1)).backends, { b: 3 }, 'ab: ejected b rather than unhealthy a')
  t.same((await load(`${gw.url}/ba`, 3, 1)).backends, { b: 3 }, 'ba: likewise, listed first')
  t.equal(a.hits, aHits, 'the unhealthy target got nothing')
})


t.test('whenAllUnhealthy: least-bad balances among targets as bad (all failing their checks), by the upstream\'s balancer', async t => {
  const bs = await startBackends(t, 3)
  // A cause they share (the health check's own dependency down): every target unhealthy, all still serving.
  const gw = await startGateway(`upstreams:
  rr:
${targets(bs)}
  hashed:
${targets(bs)}
    balance: consistent-hash
    hashOn: { header: x-user }
routes:
  - { name: rr, match: { path: /rr }, upstream: rr }
  - { name: hashed, match: { path: /hashed }, upstream: hashed }
`)
  t.teardown(() => gw.close())
  for (const name of ['rr', 'hashed']) for (const b of bs) t.ok(gw.gateway.runtime.upstreams.get(name)!.setTargetHealth(b.url, false))
  t.same((await load(`${gw.url}/rr`, 30, 1)).backends, { a: 10, b: 10, c: 10 }, 'round-robin as usual, not all to the first listed')
  const owners = new Map<string, string>()
  for (let i = 0; i < 24; i++) {
    const user = `user-${i % 8}`
    const r = await load(`${gw.url}/hashed`, 1, 1, { headers: () => ({ 'x-user': user }) })
    const [who] = Object.keys(r.backends)
    t.equal(owners.get(user) ?? who, who, `${user} keeps its target`)
    owners.set(user, who as string)
  }
  t.ok(new Set(owners.values()).size > 1, 'consistent-hash keys spread over the targets as usual')
})

/**
 * One target that answers `status` with part of a 100-byte body, then `breaks` (reset) or stalls; passive: `passive`.
 * A spare target beside it, so that it is not the last one available (never ejected), gets none of
 * the requests: weight 1 against 1000, smooth round-robin gives it none of the first 500.
 */
async function brokenBody (t: Test, status: number, breaks: 'reset' | 'stall', passive: string) {
  const up = await startUpstream((_req, res) => {
    res.writeHead(status, { 'content-length': '100' }).write('partial')
    if (breaks === 'reset') setTimeout(() => res.socket?.destroy(), 10)
  })
  const spare = await startUpstream((req, res) => { req.resume(); res.end() })
  t.teardown(() => Promise.all([up.close(), spare.close()]))
  const gw = await startGateway(`upstreams:\n  up:\n    targets: [ { url: "${up.url}", weight: 1000 }, { url: "${spare.url}" } ]\n    timeouts: { idle: 300ms }\n    passive: ${passive}\n${route}`)
  t.teardown(() => gw.close())
  return { gw, down: () => gw.gateway.runtime.upstreams.get('up')!.snapshot().targets[0]?.down }
}

t.test('a response broken after its head is judged once, by its end: a failure of its target', async t => {
  for (const breaks of ['reset', 'stall'] as const) {
    const { gw, down } = await brokenBody(t, 200, breaks, '{ consecutiveFailures: 3 }')
    for (let i = 0; i < 3; i++) {
      const res = await request(`${gw.url}/x`)
      t.equal(res.statusCode, 200)
      await t.rejects(res.body.text(), breaks)
      if (i < 2) t.same(down(), [], `${i + 1} broken bodies: not yet (${breaks})`)
    }
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/x' }), { error: 'upstream_broken' })
    t.same(down(), ['ejected'], `3 bodies broken by a ${breaks}: ejected`)
  }
})

t.test('a 5xx broken after its head is judged once, by its status: not a second time as a failure', async t => {
  const { gw, down } = await brokenBody(t, 503, 'reset', '{ consecutiveFailures: 2 }')
  const res = await request(`${gw.url}/x`)
  await res.body.text().catch(() => undefined)
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/x' }), { error: 'upstream_broken' })
  t.same(down(), [], 'two failures would have ejected it')
})

t.test('a client that leaves mid-body is no failure of the target', async t => {
  const { gw, down } = await brokenBody(t, 200, 'stall', '{ consecutiveFailures: 1 }')
  const res = await request(`${gw.url}/x`)
  t.equal(res.statusCode, 200)
  res.body.destroy()
  t.ok(await waitForLog(gw.logs, { msg: 'request', path: '/x', status: 499 }))
  t.same(down(), [], 'one failure would have ejected it')
})

t.test('a refused connection is no sign of speed: the target ranks behind one that answers', async t => {
  const bs = await startBackends(t, 1)
  bs[0]!.delayMs = 50
  const gw = await startGateway(`upstreams:\n  up:\n    balance: p2c-ewma\n    passive: false\n    targets: [ { url: "http://127.0.0.1:1" }, { url: "${bs[0]!.url}" } ]\n${route}`)
  t.teardown(() => gw.close())
  // Connect errors are retried on the other target: every request is answered.
  const r = await load(`${gw.url}/x`, 5, 1)
  t.same(r.statuses, { 200: 5 })
  const [refused, answering] = gw.gateway.runtime.upstreams.get('up')!.snapshot().targets
  t.ok(answering!.latencyMs >= 50, `the answering target: ${answering!.latencyMs} ms`)
  // Once the other has an estimate (at least its 50 ms), a refused try counts twice it; tried first,
  // before any estimate, the refused target is tried again unless its refusal took longer than the
  // other's first answer. Not compared with the other's estimate now: an answer of the other slower
  // than that since its last try (a loaded machine) has raised it past.
  t.ok(refused!.latencyMs >= 0.9 * 50, `the refused target: ${refused!.latencyMs} ms, behind the other's answers, never 0`)
})
