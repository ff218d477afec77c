import t from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { load, startBackends } from './backends.ts'

// The idle and keep-alive timers are undici's, which may fire up to a second late (README):
// bounds are well under the defaults (idle 60 s, keepAlive 4 s) that a lost setting would fall back to.

t.test('timeouts.idle: a response body that stalls is cut after the idle time, per upstream and per route', async t => {
  // Headers and a first chunk at once, then nothing.
  const stalls = await startUpstream((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain' }).write('first') })
  t.teardown(() => stalls.close())
  const gw = await startGateway(`upstreams:
  short: { targets: [ { url: "${stalls.url}" } ], timeouts: { idle: 300ms } }
  long: { targets: [ { url: "${stalls.url}" } ], timeouts: { idle: 1m } }
routes:
  - { name: upstream-idle, match: { path: /upstream }, upstream: short }
  - { name: route-idle, match: { path: /route }, upstream: long, timeouts: { idle: 300ms } }
`)
  t.teardown(() => gw.close())
  for (const route of ['upstream', 'route']) {
    const start = performance.now()
    const res = await request(`${gw.url}/${route}`, { bodyTimeout: 3_000 }) // a gateway that never cut would fail here
    t.equal(res.statusCode, 200, `${route}: the response had begun`)
    const chunks: string[] = []
    res.body.on('data', (c: Buffer) => chunks.push(c.toString()))
    await t.rejects(once(res.body, 'end'), `${route}: then the connection is cut: the body never completes`)
    const ms = performance.now() - start
    t.same(chunks, ['first'], `${route}: what came before the stall was passed on`)
    t.ok(ms >= 290 && ms < 2_500, `${route}: cut after ${Math.round(ms)} ms`)
    t.match(await waitForLog(gw.logs, { msg: 'upstream request failed', route: `${route}-idle` }), { err: { code: 'UND_ERR_BODY_TIMEOUT' } })
  }
})

for (const hint of [false, true]) {
  t.test(`keepAlive: an idle upstream connection is closed after the configured time${hint ? ', also when the upstream hints a longer Keep-Alive timeout' : ''}`, async t => {
    let closedAt = 0
    const up = await startUpstream((req, res) => { req.resume(); res.writeHead(200).end('ok') })
    // The upstream never closes idle connections itself; with the hint it says `Keep-Alive: timeout=600`
    // (undici took that, up to 600 s, over keepAlive).
    up.server.keepAliveTimeout = hint ? 600_000 : 0
    up.server.on('connection', (socket: Socket) => socket.once('close', () => { closedAt = performance.now() }))
    t.teardown(() => up.close())
    const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ], keepAlive: 1s }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
    t.teardown(() => gw.close())
    const res = await request(`${gw.url}/x`)
    t.equal(await res.body.text(), 'ok')
    const answeredAt = performance.now()
    t.equal(gw.gateway.runtime.upstreams.get('up')!.targets[0]!.pool.stats.connected, 1, 'the connection is kept for the next request...')
    t.ok(await until(() => closedAt > 0, 5_000), '...then closed by the gateway')
    // 1 s, not undici's default 4 s; the client reads the answer a little after the idle time starts.
    t.ok(closedAt - answeredAt >= 600 && closedAt - answeredAt < 3_000, `after ${Math.round(closedAt - answeredAt)} ms idle`)
  })
}

t.test('a whole-request timeout does not count against the target: no ejection, its share of traffic kept', async t => {
  const bs = await startBackends(t, 2)
  for (const b of bs) b.delayMs = 2_000
  // One failure would eject a target for 10 minutes, if the route's own budget counted as one.
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${bs[0]!.url}" }, { url: "${bs[1]!.url}" } ]
    passive: { consecutiveFailures: 1, baseEjection: 10m, maxEjection: 10m }
routes:
  - { name: hurried, match: { path: /hurried }, upstream: up, timeouts: { request: 200ms } }
  - { name: calm, match: { path: /calm }, upstream: up }
`)
  t.teardown(() => gw.close())
  t.same((await load(`${gw.url}/hurried`, 2, 1)).statuses, { 504: 2 }, 'each target took one request over the route\'s limit')
  t.same(bs.map(b => b.hits), [1, 1])
  for (const b of bs) b.delayMs = 0
  t.same((await load(`${gw.url}/calm`, 4, 1)).backends, { a: 2, b: 2 }, 'both still get their share')
  const snap = gw.gateway.runtime.upstreams.get('up')!.snapshot()
  t.same(snap.targets.map(x => x.ejectedUntil), [null, null], 'neither is ejected')
  t.same((await gw.metrics.registry.getSingleMetric('portcullis_upstream_ejections_total')!.get()).values.map(v => v.value), [0, 0], 'no ejection counted')
})
