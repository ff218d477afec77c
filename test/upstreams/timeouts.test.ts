import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { connect, createServer, type AddressInfo } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startBackends } from './backends.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { waitForLog } from '../helpers/logs.ts'

// Each failure's own line is checked: none left out as a repeat of the one before (see LogLimiter).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Response timeouts under 10 s and request timeouts run on timers of their own: they fire on time.
// Longer response timeouts and idle timeouts are undici's, checked every half second or so, and may
// fire up to a second late. Bounds are tight on the early side; on the late side LATE_MS allows
// for a busy machine while staying well before what a wrong timeout would give (the other
// timeout, the backend's answer, undici's 10 s connect timeout): seconds later in every case.
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
    timeouts: { response: 2s }
    passive: false
routes:
  - { name: quick, match: { path: /quick }, upstream: up, timeouts: { response: 250ms } }
  - { name: default, match: { path: /default }, upstream: up }
`)
  t.teardown(() => gw.close())
  // Generous bounds: not before the timeout, well before the backend would answer (the route's, before the upstream's 2 s).
  const quick = await timed(`${gw.url}/quick`)
  t.equal(quick.status, 504)
  t.ok(quick.ms >= 240 && quick.ms < 250 + LATE_MS, `route timeout 250ms fired after ${Math.round(quick.ms)} ms`)
  const slow = await timed(`${gw.url}/default`)
  t.equal(slow.status, 504)
  t.match(JSON.parse(slow.body), { error: 'gateway_timeout' })
  t.ok(slow.ms >= 1_990 && slow.ms < 2_000 + LATE_MS, `upstream timeout 2s fired after ${Math.round(slow.ms)} ms`)
  // The gateway's own timer (250 ms) fails the try as undici's (2 s) does: the same error logged.
  const failed = gw.logs.filter(l => l.msg === 'upstream request failed').map(l => l.err as { code: string, message: string })
  t.same(failed.map(e => [e.code, e.message]), [['UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error'], ['UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error']])
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
  // The access line is written as the response closes, which can be after the client has read it.
  t.ok(await waitForLog(gw.logs, { msg: 'request', tries: 2 }), 'the access log shows 2 tries')
})

t.test('request timeout: the whole request, per route over per upstream; 504 before the response, a cut after', async t => {
  const bs = await startBackends(t, 1)
  bs[0]!.delayMs = 5_000
  // Headers at once, then a chunk every 100 ms: neither the response nor the idle timeout ever fires.
  const trickle = await startUpstream((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain' })
    const timer = setInterval(() => res.write('.'), 100)
    res.on('close', () => clearInterval(timer))
  })
  t.teardown(() => trickle.close())
  const gw = await startGateway(`upstreams:
  slow:
    targets: [ { url: "${bs[0]!.url}" } ]
    timeouts: { request: 1500ms }
  trickle:
    targets: [ { url: "${trickle.url}" } ]
    timeouts: { request: 400ms }
routes:
  - { name: route-limit, match: { path: /route }, upstream: slow, timeouts: { request: 300ms } }
  - { name: upstream-limit, match: { path: /upstream }, upstream: slow }
  - { name: streaming, match: { path: /stream }, upstream: trickle }
`)
  t.teardown(() => gw.close())
  // Our own timer, not undici's coarse ones: fired on time, never early.
  const route = await timed(`${gw.url}/route`)
  t.equal(route.status, 504)
  t.match(JSON.parse(route.body), { error: 'gateway_timeout', requestId: String })
  t.ok(route.ms >= 290 && route.ms < 1_400, `route limit 300ms (not the upstream's 1.5 s) fired after ${Math.round(route.ms)} ms`)
  const upstream = await timed(`${gw.url}/upstream`)
  t.equal(upstream.status, 504)
  t.ok(upstream.ms >= 1_490 && upstream.ms < 4_000, `upstream limit 1.5s (not the backend's 5 s) fired after ${Math.round(upstream.ms)} ms`)

  const start = performance.now()
  const res = await request(`${gw.url}/stream`)
  t.equal(res.statusCode, 200, 'the response had begun')
  await t.rejects(res.body.text(), 'then the connection is cut at the limit: the body never completes')
  const ms = performance.now() - start
  t.ok(ms >= 390 && ms < 3_000, `cut after ${Math.round(ms)} ms`)
  const line = await waitForLog(gw.logs, { msg: 'upstream request failed', route: 'streaming' })
  t.match(line, { err: { code: 'REQUEST_TIMEOUT' } })
  t.match(await waitForLog(gw.logs, { msg: 'request', route: 'streaming' }), { status: 200, error: 'request_timeout' }, 'logged as cut by the timeout, not as a client gone (499)')
  t.match(await waitForLog(gw.logs, { msg: 'request', route: 'route-limit' }), { status: 504, error: undefined }, 'answered, not cut')
})

/**
 * A port whose connections never complete: its listener is frozen (SIGSTOP) with a full accept
 * queue, so the kernel drops further SYNs and a connect just waits.
 */
async function stalledPort (t: Test): Promise<string> {
  const child = spawn(process.execPath, ['-e',
    "const s = require('net').createServer(); s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => process.send(s.address().port))"
  ], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = await new Promise<number>(resolve => child.once('message', port => resolve(port as number)))
  process.kill(child.pid as number, 'SIGSTOP')
  const fillers = [0, 1, 2, 3].map(() => connect(port, '127.0.0.1').on('error', () => {}))
  t.teardown(() => { for (const s of fillers) s.destroy() })
  // The queue (backlog + 1) is full once two have connected; the others, like the gateway's, wait.
  await Promise.all(fillers.slice(0, 2).map(s => once(s, 'connect')))
  return `http://127.0.0.1:${port}`
}

t.test('connect timeout: 504 on time, and by default the request is retried on another target', async t => {
  const stalled = await stalledPort(t)
  const bs = await startBackends(t, 1)
  const gw = await startGateway(`upstreams:
  alone:
    targets: [ { url: "${stalled}" } ]
    timeouts: { connect: 300ms }
    passive: false
  pair:
    targets: [ { url: "${stalled}" }, { url: "${bs[0]!.url}" } ]
    timeouts: { connect: 300ms }
    passive: false
routes:
  - { name: alone, match: { path: /alone }, upstream: alone }
  - { name: pair, match: { path: /pair }, upstream: pair }
`)
  t.teardown(() => gw.close())
  const alone = await timed(`${gw.url}/alone`)
  t.equal(alone.status, 504)
  t.match(JSON.parse(alone.body), { error: 'gateway_timeout' })
  t.ok(alone.ms >= 290 && alone.ms < 300 + LATE_MS, `connect timeout 300ms fired after ${Math.round(alone.ms)} ms`)
  const pair = await timed(`${gw.url}/pair`) // round-robin: the stalled target first
  t.equal(pair.status, 200, 'retried on the other target')
  t.same(JSON.parse(pair.body), { backend: 'a' })
  t.ok(pair.ms >= 290 && pair.ms < 300 + LATE_MS, `after the connect timeout: ${Math.round(pair.ms)} ms`)
})

t.test('an upstream that sends 1xx answers for ever is cut at timeouts.response after its first, undici-timed (10 s or more) too', async t => {
  // 103 Early Hints every 300 ms and never a final answer: undici restarts its timer on each.
  const informational = createServer(socket => {
    socket.on('error', () => {})
    socket.once('data', () => {
      const hints = setInterval(() => socket.write('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n'), 300)
      socket.on('close', () => clearInterval(hints))
    })
  })
  informational.listen(0, '127.0.0.1')
  await once(informational, 'listening')
  t.teardown(() => { informational.close() })
  const port = (informational.address() as AddressInfo).port
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${port}" } ], timeouts: { response: 10s }, retries: false, passive: false }
routes:
  - { name: hints, match: { path: /hints }, upstream: up }
`)
  t.teardown(() => gw.close())
  const res = await timed(`${gw.url}/hints`)
  t.equal(res.status, 504, `answered ${res.status} after ${Math.round(res.ms)} ms`)
  t.ok(res.ms >= 10_000 - 50 && res.ms < 10_000 + LATE_MS + 1_000, `after the response timeout: ${Math.round(res.ms)} ms`)
})
