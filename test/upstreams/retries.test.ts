import { once } from 'node:events'
import { createServer, type AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { echo, startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { until } from '../helpers/wait.ts'
import { load, startBackends, type Backend } from './backends.ts'

const route = `
routes:
  - name: all
    match: { path: /* }
    upstream: up
`
async function gateway (t: { teardown (fn: () => unknown): void }, bs: Backend[], policy: string) {
  const gw = await startGateway(`upstreams:
  up:
    targets:
${bs.map(b => `      - { url: "${b.url}" }`).join('\n')}
${policy.replace(/^/gm, '    ')}
${route}`)
  t.teardown(() => gw.close())
  return gw
}

async function retries (gw: Awaited<ReturnType<typeof gateway>>): Promise<number> {
  return (await gw.metrics.upstreamRetries.get()).values.reduce((n, v) => n + v.value, 0)
}

t.test('a configured status is retried on another target; the client never sees it', async t => {
  const bs = await startBackends(t, 2)
  bs[0]!.status = 503
  const gw = await gateway(t, bs, 'retries: { on: [connect-error, 503] }\npassive: false')
  const r = await load(`${gw.url}/x`, 20, 2)
  t.same(r.statuses, { 200: 20 })
  t.equal(bs[0]!.hits, 10, 'half the first tries met the failing backend')
  t.equal(bs[1]!.hits, 20)
  t.equal(await retries(gw), 10)
})

t.test('a retry sends the new target its own Host; a Host a plugin set goes to every try', async t => {
  const hosts: Array<[string, string | undefined]> = []
  const failing = await startUpstream((req, res) => { hosts.push(['failing', req.headers.host]); req.resume(); res.writeHead(503).end() })
  const ok = await startUpstream((req, res) => { hosts.push(['ok', req.headers.host]); req.resume(); res.end('ok') })
  t.teardown(async () => { await failing.close(); await ok.close() })
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${failing.url}" }, { url: "${ok.url}" } ]
    retries: { on: [503] }
    passive: false
    balance: round-robin
routes:
  - { name: plain, match: { path: /plain }, upstream: up }
  - { name: named, match: { path: /named }, upstream: up, plugins: { request-headers: { set: { Host: api.example } } } }
`)
  t.teardown(() => gw.close())
  // Round-robin alternates: of two requests, one starts on the failing target and is retried.
  for (const path of ['/plain', '/plain', '/named', '/named']) {
    const res = await request(`${gw.url}${path}`)
    await res.body.dump()
    t.equal(res.statusCode, 200, path)
  }
  const f = `127.0.0.1:${failing.port}`
  const o = `127.0.0.1:${ok.port}`
  t.same(hosts.slice(0, 3).sort(), [['failing', f], ['ok', o], ['ok', o]], 'each target its own host')
  t.same(hosts.slice(3).sort(), [['failing', 'api.example'], ['ok', 'api.example'], ['ok', 'api.example']], "the plugin's host on both tries")
})

/**
 * Two targets, round-robin: one answers `status` with part of its body, then breaks the connection;
 * the other answers 200 "ok". `retries`: the upstream's retries setting, if any.
 */
async function brokenAndOk (t: Test, status: number, retries = ''): Promise<{ gw: TestGateway, hits: { broken: number, ok: number } }> {
  const hits = { broken: 0, ok: 0 }
  const broken = await startUpstream((req, res) => {
    hits.broken++
    req.resume()
    res.writeHead(status, { 'content-length': '100' }).write('partial')
    setTimeout(() => res.socket?.destroy(), 50)
  })
  const ok = await startUpstream((req, res) => { hits.ok++; req.resume(); res.end('ok') })
  t.teardown(async () => { await broken.close(); await ok.close() })
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${broken.url}" }, { url: "${ok.url}" } ]
    passive: false
    balance: round-robin
${retries === '' ? '' : `    retries: ${retries}\n`}routes:
  - { name: all, match: { path: /* }, upstream: up }
`, { admin: true })
  t.teardown(() => gw.close())
  return { gw, hits }
}

t.test('a response broken after its head is never retried: the client has it already', async t => {
  const { gw, hits } = await brokenAndOk(t, 200)
  // Round-robin alternates: one of the two GETs meets the broken target first.
  const bodies = await Promise.allSettled([1, 2].map(async () => (await request(`${gw.url}/x`)).body.text()))
  t.same(bodies.map(b => b.status).sort(), ['fulfilled', 'rejected'], 'one answered, one cut')
  t.same(hits, { broken: 1, ok: 1 }, 'the broken one not sent again')
})

t.test('a retried status whose connection breaks while it is drained is retried once, for its status', async t => {
  const { gw, hits } = await brokenAndOk(t, 503, '{ on: [503, reset] }')
  // Round-robin alternates: one of the two GETs meets the failing target first.
  for (let i = 0; i < 2; i++) {
    const res = await request(`${gw.url}/x`)
    t.equal(res.statusCode, 200)
    t.equal(await res.body.text(), 'ok')
  }
  t.same(hits, { broken: 1, ok: 2 })
  const admin = gw.adminUrl as string
  t.equal(await metricValue(admin, 'portcullis_upstream_retries_total{upstream="up",reason="503"}'), 1)
  t.equal(await metricValue(admin, 'portcullis_upstream_retries_total{upstream="up",reason="reset"}'), 0, 'the break is not a second reason to retry')
})

t.test('a retried status whose body never ends is dropped at once, not drained: the retry goes out', async t => {
  const hits = { endless: 0, ok: 0 }
  let dropped = 0
  const endless = await startUpstream((req, res) => {
    hits.endless++
    req.socket.once('close', () => dropped++)
    req.resume()
    res.writeHead(503, { 'content-type': 'text/plain' }).write('.')
    const drip = setInterval(() => res.write('.'), 100)
    res.on('close', () => clearInterval(drip))
  })
  const ok = await startUpstream((req, res) => { hits.ok++; req.resume(); res.end('ok') })
  t.teardown(async () => { await endless.close(); await ok.close() })
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${endless.url}" }, { url: "${ok.url}" } ]
    retries: { on: [reset, 503], methods: [GET, POST] }
    passive: false
    balance: round-robin
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  // Round-robin alternates: one of the two requests meets the endless target first.
  for (const method of ['GET', 'POST'] as const) {
    for (let i = 0; i < 2; i++) {
      const res = await request(`${gw.url}/x`, { method, body: method === 'POST' ? 'p' : undefined, headersTimeout: 3_000 })
      t.equal(res.statusCode, 200, method)
      t.equal(await res.body.text(), 'ok')
    }
  }
  t.same(hits, { endless: 2, ok: 4 })
  t.ok(await until(() => dropped === 2), "the endless responses' connections were closed")
})

t.test('request bodies: retried when buffered (small, idempotent), not when too big or POST', async t => {
  const bs = await startBackends(t, 2)
  bs[0]!.status = 503
  const gw = await gateway(t, bs, 'retries: { on: [503], maxBodyBytes: 1000 }\npassive: false\nbalance: round-robin')
  const send = async (method: string, body: string) => {
    const res = await request(`${gw.url}/x`, { method: method as 'PUT', body, headers: { 'content-type': 'text/plain' } })
    await res.body.dump()
    return res.statusCode
  }
  const small = 'x'.repeat(1000)
  // Round-robin alternates a, b: every odd request starts on the failing backend.
  t.same([await send('PUT', small), await send('PUT', small)], [200, 200], 'a small PUT is sent again to b')
  t.equal(bs[1]!.bodies.filter(b => b === small).length, 2, 'b received the whole body both times')
  t.same([await send('PUT', small + 'y'), await send('PUT', small + 'y')].sort(), [200, 503], 'over maxBodyBytes: not buffered, not retried')
  t.same([await send('POST', 'p'), await send('POST', 'p')].sort(), [200, 503], 'POST is not idempotent: not retried on a status')
})

t.test('requestBuffer: 0: only a body a retry may send again is read first, every other body streams', async t => {
  const bs = await startBackends(t, 2)
  bs[0]!.status = 503
  // How much of the body the client had sent when the request reached the upstream.
  let sent = 0
  let reached = (): void => {}
  const seenAt: number[] = []
  const up = await startUpstream((req, res) => { seenAt.push(sent); reached(); echo(req, res) })
  t.teardown(() => up.close())
  const upstream = (name: string, url: string, retries: string) => `  ${name}:
    targets: [ { url: "${url}" }${url === up.url ? '' : `, { url: "${bs[1]!.url}" }`} ]
    requestBuffer: 0
    retries: ${retries}
    passive: false`
  const gw = await startGateway(`upstreams:
${upstream('resend', bs[0]!.url, '{ on: [connect-error, 503], maxBodyBytes: 10 }')}
${upstream('post', up.url, '{ on: [503] }')}
${upstream('connect', up.url, '{ on: [connect-error] }')}
${upstream('off', up.url, 'false')}
routes:
${['resend', 'post', 'connect', 'off'].map(n => `  - { name: ${n}, match: { path: /${n} }, upstream: ${n} }`).join('\n')}
`)
  t.teardown(() => gw.close())

  const put = await request(`${gw.url}/resend`, { method: 'PUT', body: '0123456789' })
  t.equal(`${put.statusCode} ${await put.body.text()}`, '200 {"backend":"b"}', 'a PUT of maxBodyBytes: read first, so sent again to b after a\'s 503')
  t.same(bs.map(b => b.bodies), [['0123456789'], ['0123456789']])

  const streamed = async (method: string, path: string): Promise<string> => {
    sent = 0
    const atUpstream = new Promise<void>(resolve => { reached = resolve })
    async function * body (): AsyncGenerator<Buffer> {
      sent = 5
      yield Buffer.from('01234')
      // Bounded: a gateway that reads the whole body first forwards nothing until the rest comes.
      await Promise.race([atUpstream, new Promise(resolve => setTimeout(resolve, 2_000))])
      sent = 10
      yield Buffer.from('56789')
    }
    const res = await request(`${gw.url}${path}`, { method: method as 'PUT', body: Readable.from(body()), headers: { 'content-length': '10' } })
    const echoed = await res.body.json() as { body: string }
    return `${res.statusCode} ${echoed.body} reached the upstream after ${seenAt.at(-1)} bytes`
  }
  t.equal(await streamed('POST', '/post'), '200 0123456789 reached the upstream after 5 bytes', 'POST is not retried: streamed')
  t.equal(await streamed('PUT', '/connect'), '200 0123456789 reached the upstream after 5 bytes', 'on: [connect-error] only: streamed (nothing to send again)')
  t.equal(await streamed('PUT', '/off'), '200 0123456789 reached the upstream after 5 bytes', 'retries: false: streamed')
})

t.test('a connect error is retried for any method, streamed body included (nothing was sent)', async t => {
  const bs = await startBackends(t, 2)
  await bs[0]!.kill()
  const gw = await gateway(t, bs, 'passive: false')
  const big = 'z'.repeat(200_000) // far over maxBodyBytes: streamed, never buffered
  for (let i = 0; i < 4; i++) {
    const res = await request(`${gw.url}/x`, { method: 'POST', body: big })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  t.equal(bs[1]!.bodies.filter(b => b === big).length, 4, 'every POST reached b whole')
  t.equal(await retries(gw), 2)
})

t.test('retries: false and attempts: 0 turn retries off', async t => {
  for (const policy of ['retries: false', 'retries: { attempts: 0 }']) {
    const bs = await startBackends(t, 2)
    await bs[0]!.kill()
    const gw = await gateway(t, bs, `${policy}\npassive: false`)
    const r = await load(`${gw.url}/x`, 10, 1)
    t.same(r.statuses, { 200: 5, 502: 5 }, policy)
  }
})

/** Retries the reserve's refill (10 a second) may have added since `since` (performance.now()). */
const refilledSince = (since: number) => Math.ceil((performance.now() - since) / 100)

t.test('the retry budget stops amplification when every target fails: 10 in reserve, then budget x requests', async t => {
  const bs = await startBackends(t, 3)
  for (const b of bs) b.status = 503
  const gw = await gateway(t, bs, 'retries: { attempts: 2, on: [503], budget: 0.25 }\npassive: false')
  // One at a time. The balance starts at 10 and each request deposits 0.25 (up to 10) before its
  // retries withdraw 1 each, at most 2 per request: requests 1-5 take 2 retries each (10 -> 1),
  // request 6 takes 1 (1.25 -> 0.25), then every 4th request takes one (9, 13, ..., 37: 8 more).
  // 19 retries for 40 requests, where attempts: 2 alone would allow 80; plus the few the reserve's
  // refill over time (10 a second) adds while they run.
  const started = performance.now()
  const r = await load(`${gw.url}/x`, 40, 1)
  const refilled = refilledSince(started)
  t.same(r.statuses, { 503: 40 })
  const retried = await retries(gw)
  t.ok(retried >= 19 && retried <= 19 + refilled, `19 retries, and at most ${refilled} more from the refill: ${retried}`)
  t.equal(bs.reduce((n, b) => n + b.hits, 0), 40 + retried, 'the backends got the 40 requests and the retries')
})

t.test('budget: 0 leaves the reserve of 10 retries, refilled at 10 a second', async t => {
  const bs = await startBackends(t, 2)
  for (const b of bs) b.status = 503
  const gw = await gateway(t, bs, 'retries: { on: [503], budget: 0 }\npassive: false')
  const started = performance.now()
  const r = await load(`${gw.url}/x`, 30, 1)
  const refilled = refilledSince(started)
  t.same(r.statuses, { 503: 30 })
  const retried = await retries(gw)
  t.ok(retried >= 10 && retried <= 10 + refilled, `the 10 in reserve, and at most ${refilled} more from the refill: ${retried}`)
  t.equal(bs.reduce((n, b) => n + b.hits, 0), 30 + retried)
  // Spent, the reserve refills over time: with budget 0 nothing else would ever let a retry through again.
  const up = gw.gateway.runtime.upstreams.get('up')!
  while (up.snapshot().retryBudget >= 1) await load(`${gw.url}/x`, 1, 1)
  t.ok(await until(() => up.snapshot().retryBudget >= 1, 10_000), 'the reserve refills')
  const before = await retries(gw)
  t.same((await load(`${gw.url}/x`, 1, 1)).statuses, { 503: 1 })
  t.equal(await retries(gw), before + 1, 'and a failed request is retried again')
})

t.test('a broken connection (reset): GET retried by default, POST not; methods: [POST] retries POST', async t => {
  const bs = await startBackends(t, 2)
  bs[0]!.reset = true
  // One upstream per case, so that each request starts on a (round-robin's first pick).
  const upstream = (name: string, extra = '') => `  ${name}:
    targets: [ { url: "${bs[0]!.url}" }, { url: "${bs[1]!.url}" } ]
    passive: false
${extra}`
  const gw = await startGateway(`upstreams:
${upstream('get')}
${upstream('confirm')}
${upstream('pay')}
${upstream('posts', '    retries: { methods: [POST] }')}
routes:
${['get', 'confirm', 'pay', 'posts'].map(n => `  - { name: ${n}, match: { path: /${n} }, upstream: ${n} }`).join('\n')}
`)
  t.teardown(() => gw.close())
  const send = async (method: string, path: string, body?: string) => {
    const res = await request(`${gw.url}${path}`, { method: method as 'POST', body })
    return `${res.statusCode} ${await res.body.text()}`
  }
  t.equal(await send('GET', '/get'), '200 {"backend":"b"}', 'GET: retried on b')
  t.same(bs.map(b => b.hits), [1, 1])

  t.match(await send('POST', '/confirm'), /^502 \{"error":"bad_gateway"/, 'a POST without a body: the client gets 502...')
  t.same(bs.map(b => b.hits), [2, 1], '...and b never saw it: the order is not confirmed twice')
  t.match(await send('POST', '/pay', 'pay 10'), /^502 \{"error":"bad_gateway"/, 'a POST with a body: 502 too...')
  t.same(bs.map(b => b.hits), [3, 1], '...and b never saw it: a payment is not sent twice')
  t.same(bs[0]!.bodies.slice(-1), ['pay 10'], 'a had received it whole')

  t.equal(await send('POST', '/posts', 'pay 20'), '200 {"backend":"b"}', 'methods: [POST]: retried on b')
  t.same(bs.map(b => b.hits), [4, 2])
  t.same(bs[1]!.bodies.slice(-1), ['pay 20'], 'with its body')
  t.same((await gw.metrics.upstreamRetries.get()).values.map(v => [v.labels.upstream, v.labels.reason, v.value]).sort(),
    [['get', 'reset', 1], ['posts', 'reset', 1]])
})

t.test('circuit breaker: opens on failures, lets one probe through after halfOpenAfter, closes on success', async t => {
  const bs = await startBackends(t, 2)
  const gw = await gateway(t, bs, 'passive: false\nretries: false\ncircuitBreaker: { failureRate: 0.5, window: 10s, minRequests: 4, halfOpenAfter: 1s }')
  // halfOpenAfter is 1 s so that the few requests of each step all fall inside it, even on a busy machine.
  const halfOpen = () => new Promise(resolve => setTimeout(resolve, 1_050))
  const up = gw.gateway.runtime.upstreams.get('up')!
  const breaker = () => up.snapshot().targets[0]!.breaker
  // 503: a status passive.statuses counts (a 500 would not: it shows a live target).
  bs[0]!.status = 503
  const r = await load(`${gw.url}/x`, 8, 1)
  t.same(r.statuses, { 200: 4, 503: 4 }, 'four failures on a (round-robin) before...')
  t.equal(breaker(), 'open', '...the breaker opens')
  const open = await load(`${gw.url}/x`, 4, 1)
  t.same(open.backends, { b: 4 }, 'an open breaker gets no traffic')
  const metrics = await gw.metrics.registry.getSingleMetricAsString('portcullis_upstream_breaker_state')
  t.match(metrics, `portcullis_upstream_breaker_state{upstream="up",target="${bs[0]!.url}"} 2`)

  await halfOpen()
  const probe = await load(`${gw.url}/x`, 4, 1)
  t.equal(probe.statuses[503], 1, 'one probe after halfOpenAfter; it fails...')
  t.equal(breaker(), 'open', '...so the breaker opens again')
  bs[0]!.status = 200
  await halfOpen()
  await load(`${gw.url}/x`, 4, 1)
  t.equal(breaker(), 'closed', 'a successful probe closes it')
  const closed = await load(`${gw.url}/x`, 10, 1)
  t.same(closed.backends, { a: 5, b: 5 }, 'and traffic is shared again')
})

t.test('a kept-alive connection the only target closes as the request arrives: a GET is retried once, on another connection', async t => {
  // Answers the first request of each connection, keeps it open, and closes it at the next one
  // unanswered: a target whose idle timeout is shorter than the pool's, at the worst moment.
  let connections = 0
  const target = createServer(socket => {
    connections++
    let requests = 0
    socket.on('error', () => {})
    socket.on('data', () => {
      if (requests++ === 0) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
      else socket.destroy()
    })
  })
  target.listen(0, '127.0.0.1')
  await once(target, 'listening')
  t.teardown(() => { target.close() })
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(target.address() as AddressInfo).port}" } ], passive: false }
routes:
  - { name: r, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const send = async (method: string) => {
    const res = await request(`${gw.url}/x`, { method: method as 'GET' })
    return `${res.statusCode} ${await res.body.text()}`
  }
  t.equal(await send('GET'), '200 ok')
  t.equal(await send('GET'), '200 ok', 'the second GET met the closing connection: retried on a new one')
  t.equal(connections, 2)
  t.same((await gw.metrics.upstreamRetries.get()).values.map(v => [v.labels.reason, v.value]), [['reset', 1]])
})
