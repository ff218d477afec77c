import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startBackends } from './backends.ts'

// undici runs response and idle timeouts on coarse timers (about 0.5 s ticks) to keep them cheap per
// request: a timeout fires at its time or up to about 1 s later. Hence the bounds below.
const LATE_MS = 1_500

async function timed (url: string): Promise<{ status: number, ms: number, body: string }> {
  const start = performance.now()
  const res = await request(url)
  const body = await res.body.text()
  return { status: res.statusCode, ms: performance.now() - start, body }
}

t.test('response timeouts fire at the configured time: per route over per upstream', async t => {
  const bs = await startBackends(t, 1)
  bs[0]!.delayMs = 8_000
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${bs[0]!.url}" } ]
    timeouts: { response: 3s }
    passive: false
routes:
  - { name: quick, match: { path: /quick }, upstream: up, timeouts: { response: 250ms } }
  - { name: default, match: { path: /default }, upstream: up }
`)
  t.teardown(() => gw.close())
  // Generous bounds: not before the timeout, well before the backend would answer.
  const quick = await timed(`${gw.url}/quick`)
  t.equal(quick.status, 504)
  t.ok(quick.ms >= 240 && quick.ms < 250 + LATE_MS, `route timeout 250ms fired after ${Math.round(quick.ms)} ms`)
  const slow = await timed(`${gw.url}/default`)
  t.equal(slow.status, 504)
  t.match(JSON.parse(slow.body), { error: 'gateway_timeout' })
  t.ok(slow.ms >= 2_990 && slow.ms < 3_000 + LATE_MS, `upstream timeout 3s fired after ${Math.round(slow.ms)} ms`)
})

t.test('retries: on [timeout] sends a timed-out GET to another target', async t => {
  const bs = await startBackends(t, 2)
  bs[0]!.delayMs = 5_000
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${bs[0]!.url}" }, { url: "${bs[1]!.url}" } ]
    timeouts: { response: 300ms }
    retries: { on: [connect-error, timeout] }
    passive: false
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const first = await timed(`${gw.url}/x`) // round-robin: a first
  t.equal(first.status, 200)
  t.same(JSON.parse(first.body), { backend: 'b' })
  t.ok(first.ms >= 290 && first.ms < 300 + LATE_MS, `answered by b after a's timeout: ${Math.round(first.ms)} ms`)
  const log = gw.logs.find(l => l.msg === 'request' && l.tries === 2)
  t.ok(log, 'the access log shows 2 tries')
})
