import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Agent, request } from 'undici'
import { deadPort, startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { until } from '../../test/helpers/wait.ts'
import { startOtlpReceiver, type ReceivedSpan } from '../../test/helpers/otlp-receiver.ts'
import { createTestCa } from '../../test/helpers/certs.ts'

// Spans exported by a real gateway to a real OTLP/HTTP receiver, checked by their ids, links and
// attributes. Upstreams: `ok` echoes the traceparent it got; `flaky` (two targets) answers 503 to a
// request's first try and 200 to its retry; `gone` refuses connections; `codes` answers the status
// its path ends with.
const receiver = await startOtlpReceiver()
t.teardown(() => receiver.close())

const upstreamSaw: Record<string, string[]> = {}
const seen = (req: IncomingMessage) => { (upstreamSaw[String(req.headers['x-request-id'])] ??= []).push(String(req.headers.traceparent)) }
const ok = await startUpstream((req, res) => { seen(req); res.writeHead(200, { 'content-type': 'text/plain' }).end('ok') })
const flakyHandler = (req: IncomingMessage, res: ServerResponse) => {
  seen(req)
  const first = upstreamSaw[String(req.headers['x-request-id'])]?.length === 1
  res.writeHead(first ? 503 : 200, { 'content-type': 'text/plain' }).end(first ? 'busy' : 'ok')
}
const flakyA = await startUpstream(flakyHandler)
const flakyB = await startUpstream(flakyHandler)
const codes = await startUpstream((req, res) => { seen(req); res.writeHead(Number(req.url?.split('/').pop())).end() })
const gonePort = await deadPort()
// Answers 200 and part of a body, then breaks the connection.
const broken = await startUpstream((req, res) => { seen(req); res.writeHead(200, { 'content-length': '100' }); res.write('part', () => res.destroy()) })
t.teardown(() => Promise.all([ok.close(), flakyA.close(), flakyB.close(), codes.close(), broken.close()]))

const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
  flaky: { targets: [ { url: "${flakyA.url}" }, { url: "${flakyB.url}" } ], retries: { on: [503] }, passive: false }
  gone: { targets: [ { url: "http://127.0.0.1:${gonePort}" } ], retries: false, passive: false }
  codes: { targets: [ { url: "${codes.url}" } ], retries: false, passive: false }
  broken: { targets: [ { url: "${broken.url}" } ], retries: false, passive: false }
  # Targets that refuse connections, for the attributes of the try.
  v6: { targets: [ { url: "http://[::1]:${gonePort}" } ], retries: false, passive: false }
  named: { targets: [ { url: "http://localhost:${gonePort}" } ], retries: false, passive: false }
  port80: { targets: [ { url: "http://127.0.0.1" } ], retries: false, passive: false }
  port443: { targets: [ { url: "https://127.0.0.1" } ], retries: false, passive: false }
plugins:
  opentelemetry:
    endpoint: ${receiver.url}
    headers: { x-api-key: secret-1 }
    serviceName: edge-gateway
    resourceAttributes: { deployment.environment.name: test, service.version: 1.2.3, replicas: 3, canary: true, build: "42" }
    flushInterval: 20ms
routes:
  - { name: items, match: { path: "/items/:id" }, upstream: ok }
  - { name: retried, match: { path: /retried }, upstream: flaky }
  - { name: refused, match: { path: /refused }, upstream: gone }
  - { name: codes, match: { path: "/codes/:code" }, upstream: codes }
  - { name: broken, match: { path: /broken }, upstream: broken }
  - { name: trace, match: { path: /traced-trace, methods: [TRACE] }, upstream: ok }
  - { name: v6, match: { path: /targets/v6 }, upstream: v6 }
  - { name: named, match: { path: /targets/named }, upstream: named }
  - { name: port80, match: { path: /targets/port80 }, upstream: port80 }
  - { name: port443, match: { path: /targets/port443 }, upstream: port443 }
  - { name: half, match: { path: /half }, upstream: ok, plugins: { opentelemetry: { endpoint: "${receiver.url}", samplingRatio: 0.5, flushInterval: 20ms } } }
  - { name: sampled-out, match: { path: /sampled-out }, upstream: ok, plugins: { opentelemetry: { endpoint: "${receiver.url}", samplingRatio: 0, flushInterval: 20ms } } }
  - { name: untraced, match: { path: /untraced }, upstream: ok, plugins: { opentelemetry: false } }
`, { admin: true })
t.teardown(() => gw.close())

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const CALLER_SPAN = '00f067aa0ba902b7'
const spansOf = (traceId: string) => receiver.spans.filter(s => s.traceId === traceId)
const SERVER = 2
const CLIENT = 3
const ERROR = 2

/** The series' value once it reaches `expected` (or its last value after a few seconds). */
async function metricSettles (adminUrl: string, series: string, expected: number): Promise<number> {
  let v = await metricValue(adminUrl, series)
  for (const start = performance.now(); v < expected && performance.now() - start < 5_000; v = await metricValue(adminUrl, series)) {
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return v
}

async function traced (path: string, id: string, traceparent?: string, method = 'GET') {
  const res = await request(`${gw.url}${path}`, { method, headers: { 'x-request-id': id, 'user-agent': 'otel-test/1', ...(traceparent === undefined ? {} : { traceparent }) } })
  // A body cut short ends in an error: the status is what is checked.
  await res.body.dump().catch(() => undefined)
  const line = await waitForLog(gw.logs, { requestId: id, msg: 'request' })
  return { status: res.statusCode, traceId: line?.traceId as string }
}

t.test('a request with a traceparent: the server span is the caller\'s child, the client span the server\'s, the upstream sees the client span', async t => {
  const before = Date.now()
  const { status, traceId } = await traced('/items/42', 'plain-1', `00-${CALLER_TRACE}-${CALLER_SPAN}-01`)
  const after = Date.now()
  t.equal(status, 200)
  t.equal(traceId, CALLER_TRACE, "the access log has the caller's trace id")
  t.ok(await until(() => spansOf(CALLER_TRACE).length === 2), 'two spans exported')
  const server = spansOf(CALLER_TRACE).find(s => s.kind === SERVER) as ReceivedSpan
  const client = spansOf(CALLER_TRACE).find(s => s.kind === CLIENT) as ReceivedSpan
  t.equal(server.parentSpanId, CALLER_SPAN, "the server span's parent is the caller's span")
  t.equal(client.parentSpanId, server.spanId, "the client span's parent is the server span")
  t.same(upstreamSaw['plain-1'], [`00-${CALLER_TRACE}-${client.spanId}-01`], 'the upstream got the client span as its parent')
  t.not(client.spanId, server.spanId)
  t.ok(server.startNs <= client.startNs && client.endNs <= server.endNs, 'the try lies within the request')
  t.ok(server.startNs >= BigInt(before - 1) * 1_000_000n && server.endNs <= BigInt(after + 1) * 1_000_000n, 'on the wall clock, within the request')
  t.equal(server.flags & 0x300, 0x300, "the server span's parent is remote (OTLP span flags)")
  t.equal(client.flags & 0x300, 0x100, "the client span's is not")
  t.equal(server.scope, 'portcullis')
  t.equal(server.name, 'GET /items/:id')
  t.has(server.attributes, {
    'http.request.method': 'GET',
    'url.path': '/items/42',
    'url.scheme': 'http',
    'http.route': '/items/:id',
    'http.response.status_code': 200,
    'server.address': '127.0.0.1',
    'server.port': Number(new URL(gw.url).port),
    'client.address': '127.0.0.1',
    'network.peer.address': '127.0.0.1',
    'network.protocol.version': '1.1',
    'user_agent.original': 'otel-test/1',
    'portcullis.route': 'items',
    'portcullis.request_id': 'plain-1'
  })
  t.equal(typeof server.attributes['network.peer.port'], 'number')
  t.equal(server.attributes['error.type'], undefined)
  t.equal(server.status, 0, 'status unset on success')
  t.equal(client.name, 'GET')
  t.same(client.attributes, {
    'http.request.method': 'GET',
    'server.address': '127.0.0.1',
    'server.port': ok.port,
    'network.peer.address': '127.0.0.1',
    'network.peer.port': ok.port,
    'url.full': `${ok.url}/items/42`,
    'http.response.status_code': 200,
    'portcullis.upstream': 'ok'
  })
  t.match(server.resource, { 'service.name': 'edge-gateway', 'deployment.environment.name': 'test', 'service.version': '1.2.3', 'telemetry.sdk.language': 'nodejs' })
  t.strictSame([server.resource.replicas, server.resource.canary, server.resource.build], [3, true, '42'], 'numbers and booleans exported as such, a quoted number as a string')
  t.equal(receiver.exports.at(-1)?.['x-api-key'], 'secret-1', 'the configured headers go with each export')
})

t.test('without a traceparent: a root server span whose trace id is the access log\'s', async t => {
  const { traceId } = await traced('/items/1', 'root-1')
  t.match(traceId, /^[0-9a-f]{32}$/)
  t.ok(await until(() => spansOf(traceId).length === 2))
  const server = spansOf(traceId).find(s => s.kind === SERVER) as ReceivedSpan
  const client = spansOf(traceId).find(s => s.kind === CLIENT) as ReceivedSpan
  t.equal(server.parentSpanId, '', 'a root span')
  t.equal(client.parentSpanId, server.spanId)
  t.same(upstreamSaw['root-1'], [`00-${traceId}-${client.spanId}-01`])
})

t.test('a retried request: two client spans under one server span, each try sent its own traceparent', async t => {
  const trace = 'a1'.repeat(16)
  const { status } = await traced('/retried', 'retried-1', `00-${trace}-${'b2'.repeat(8)}-01`)
  t.equal(status, 200)
  t.ok(await until(() => spansOf(trace).length === 3), 'three spans exported')
  const server = spansOf(trace).find(s => s.kind === SERVER) as ReceivedSpan
  const tries = spansOf(trace).filter(s => s.kind === CLIENT).sort((a, b) => Number(a.startNs - b.startNs))
  t.equal(tries.length, 2)
  const [first, second] = tries as [ReceivedSpan, ReceivedSpan]
  t.equal(first.parentSpanId, server.spanId)
  t.equal(second.parentSpanId, server.spanId)
  t.ok(first.endNs <= second.startNs, 'the retry starts after the first try ended')
  t.equal(first.attributes['http.response.status_code'], 503)
  t.equal(first.attributes['error.type'], '503')
  t.equal(first.status, ERROR)
  t.equal(first.attributes['http.request.resend_count'], undefined)
  t.equal(second.attributes['http.response.status_code'], 200)
  t.equal(second.attributes['http.request.resend_count'], 1)
  t.equal(second.status, 0)
  t.not(first.attributes['server.port'], second.attributes['server.port'], 'the retry went to the other target')
  t.same(upstreamSaw['retried-1'], [`00-${trace}-${first.spanId}-01`, `00-${trace}-${second.spanId}-01`])
  t.equal(server.attributes['http.response.status_code'], 200)
  t.equal(server.status, 0)
})

t.test('an upstream that refuses the connection: a failed client span, a 502 server span', async t => {
  const trace = 'c3'.repeat(16)
  const { status } = await traced('/refused', 'refused-1', `00-${trace}-${'d4'.repeat(8)}-01`)
  t.equal(status, 502)
  t.ok(await until(() => spansOf(trace).length === 2))
  const server = spansOf(trace).find(s => s.kind === SERVER) as ReceivedSpan
  const client = spansOf(trace).find(s => s.kind === CLIENT) as ReceivedSpan
  t.equal(client.attributes['error.type'], 'ECONNREFUSED')
  t.equal(client.attributes['http.response.status_code'], undefined, 'no response')
  t.equal(client.status, ERROR)
  t.equal(server.attributes['http.response.status_code'], 502)
  t.equal(server.attributes['error.type'], '502')
  t.equal(server.status, ERROR)
})

t.test('an upstream that breaks the body after a 200: the server span is an error, its type the access log\'s error', async t => {
  const trace = '9b'.repeat(16)
  t.equal((await traced('/broken', 'broken-1', `00-${trace}-${'d4'.repeat(8)}-01`)).status, 200)
  t.ok(await until(() => spansOf(trace).length === 2))
  const server = spansOf(trace).find(s => s.kind === SERVER) as ReceivedSpan
  t.match(await waitForLog(gw.logs, { requestId: 'broken-1', msg: 'request' }), { status: 200, error: 'upstream_broken' })
  t.equal(server.attributes['http.response.status_code'], 200)
  t.equal(server.attributes['error.type'], 'upstream_broken')
  t.equal(server.status, ERROR, 'the client got a truncated body')
})

t.test('methods: each known one by its name, any other as _OTHER with the original beside', async t => {
  for (const [i, method] of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD', 'TRACE', 'PURGE'].entries()) {
    const trace = `${i + 1}`.repeat(32)
    // TRACE goes only to routes that list it.
    const route = method === 'TRACE' ? '/traced-trace' : '/items/:id'
    t.equal((await traced(method === 'TRACE' ? route : '/items/5', `method-${method}`, `00-${trace}-${'12'.repeat(8)}-01`, method)).status, 200, method)
    t.ok(await until(() => spansOf(trace).length === 2), `${method}: two spans exported`)
    const server = spansOf(trace).find(s => s.kind === SERVER) as ReceivedSpan
    const client = spansOf(trace).find(s => s.kind === CLIENT) as ReceivedSpan
    const known = method !== 'PURGE'
    t.equal(server.name, known ? `${method} ${route}` : `HTTP ${route}`)
    t.equal(client.name, known ? method : 'HTTP')
    for (const span of [server, client]) {
      t.equal(span.attributes['http.request.method'], known ? method : '_OTHER')
      t.equal(span.attributes['http.request.method_original'], known ? undefined : method)
    }
  }
})

t.test('a 4xx makes the try an error, not the request; a 5xx both', async t => {
  for (const [code, trace] of [[400, 'ab12'.repeat(8)], [500, 'cd34'.repeat(8)]] as const) {
    t.equal((await traced(`/codes/${code}`, `codes-${code}`, `00-${trace}-${'12'.repeat(8)}-01`)).status, code)
    t.ok(await until(() => spansOf(trace).length === 2))
    const server = spansOf(trace).find(s => s.kind === SERVER) as ReceivedSpan
    const client = spansOf(trace).find(s => s.kind === CLIENT) as ReceivedSpan
    t.equal(client.attributes['error.type'], String(code))
    t.equal(client.status, ERROR)
    t.equal(server.attributes['http.response.status_code'], code)
    t.equal(server.attributes['error.type'], code === 500 ? '500' : undefined)
    t.equal(server.status, code === 500 ? ERROR : 0)
  }
})

t.test('the try\'s server and peer attributes: IPv6 without brackets, a host name without peer address, default ports', async t => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['v6', { 'server.address': '::1', 'server.port': gonePort, 'network.peer.address': '::1', 'network.peer.port': gonePort }],
    ['named', { 'server.address': 'localhost', 'server.port': gonePort, 'network.peer.address': undefined, 'network.peer.port': undefined }],
    ['port80', { 'server.address': '127.0.0.1', 'server.port': 80 }],
    ['port443', { 'server.address': '127.0.0.1', 'server.port': 443 }]
  ]
  for (const [i, [name, expected]] of cases.entries()) {
    const trace = `${i}f`.repeat(16)
    await traced(`/targets/${name}`, `target-${name}`, `00-${trace}-${'12'.repeat(8)}-01`)
    t.ok(await until(() => spansOf(trace).length === 2), name)
    const client = spansOf(trace).find(s => s.kind === CLIENT) as ReceivedSpan
    for (const [key, value] of Object.entries(expected)) t.equal(client.attributes[key], value, `${name}: ${key}`)
  }
})

t.test('samplingRatio 0.5 samples some new traces, not all', async t => {
  const flags = new Set<string>()
  const sampled: string[] = []
  for (let i = 0; i < 64 && flags.size < 2; i++) {
    const { traceId } = await traced('/half', `half-${i}`)
    const flag = String(upstreamSaw[`half-${i}`]?.[0]).slice(-2)
    flags.add(flag)
    if (flag === '01') sampled.push(traceId)
  }
  t.same([...flags].sort(), ['00', '01'], 'sampled and not sampled traces (each a 1 in 2 chance)')
  t.ok(await until(() => sampled.every(id => spansOf(id).length === 2)), 'the sampled ones exported (before the next test counts spans)')
})

t.test('sampling is parent-based: the ratio decides new traces, the caller\'s flag decides the others', async t => {
  const before = receiver.spans.length
  const newTrace = await traced('/sampled-out', 'sampled-out-1')
  const sc = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(upstreamSaw['sampled-out-1']?.[0] ?? '')
  t.ok(sc, 'ratio 0: the upstream is told the trace is not sampled')
  t.equal(sc?.[1], newTrace.traceId)
  const notSampled = 'e5'.repeat(16)
  await traced('/items/2', 'caller-not-sampled', `00-${notSampled}-${'f6'.repeat(8)}-00`)
  t.match(upstreamSaw['caller-not-sampled']?.[0], new RegExp(`^00-${notSampled}-[0-9a-f]{16}-00$`))
  const sampled = 'a7'.repeat(16)
  await traced('/sampled-out', 'caller-sampled', `00-${sampled}-${'b8'.repeat(8)}-01`)
  t.ok(await until(() => spansOf(sampled).length === 2), 'a sampled caller is recorded even at ratio 0')
  t.equal(spansOf(newTrace.traceId).length + spansOf(notSampled).length, 0, 'the others were not exported')
  t.ok(receiver.spans.length - before === 2)
})

t.test('the caller\'s random trace id flag (02) reaches the upstream, sampled or not, as without the plugin', async t => {
  for (const flags of ['03', '02']) {
    const trace = `${flags}`.repeat(16)
    await traced('/items/4', `random-${flags}`, `00-${trace}-${'12'.repeat(8)}-${flags}`)
    t.match(upstreamSaw[`random-${flags}`]?.[0], new RegExp(`^00-${trace}-[0-9a-f]{16}-${flags}$`), flags)
  }
  t.ok(await until(() => spansOf('03'.repeat(16)).length === 2), 'the sampled one exported (before the next test counts spans)')
})

t.test('attribute values are cut at 2048 characters: a long path, URL or user agent', async t => {
  const id = 'x'.repeat(7000)
  const res = await request(`${gw.url}/items/${id}`, { headers: { 'x-request-id': 'long-1', 'user-agent': 'u'.repeat(7000), traceparent: `00-${'6a'.repeat(16)}-${'12'.repeat(8)}-01` } })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  t.ok(await until(() => spansOf('6a'.repeat(16)).length === 2))
  const server = spansOf('6a'.repeat(16)).find(s => s.kind === SERVER) as ReceivedSpan
  const client = spansOf('6a'.repeat(16)).find(s => s.kind === CLIENT) as ReceivedSpan
  t.equal(server.attributes['url.path'], `/items/${id}`.slice(0, 2048), 'url.path')
  t.equal(server.attributes['user_agent.original'], 'u'.repeat(2048), 'user_agent.original')
  t.equal(client.attributes['url.full'], `${ok.url}/items/${id}`.slice(0, 2048), 'url.full')
})

t.test('a route with the plugin off sends the gateway\'s own span as parent, and exports nothing', async t => {
  const trace = 'c9'.repeat(16)
  await traced('/untraced', 'untraced-1', `00-${trace}-${'d0'.repeat(8)}-01`)
  t.match(upstreamSaw['untraced-1']?.[0], new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`))
  // The other requests' spans arrive within flushInterval: wait for one past this one.
  await traced('/items/3', 'after-untraced', `00-${'e1'.repeat(16)}-${'f2'.repeat(8)}-01`)
  t.ok(await until(() => spansOf('e1'.repeat(16)).length === 2))
  t.equal(spansOf(trace).length, 0)
})

t.test('a request over TLS: url.scheme https', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const cert = ca.issue('gateway', 'IP:127.0.0.1')
  const secure = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { certificates: [ { cert: "${cert.certFile}", key: "${cert.keyFile}" } ] }
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${receiver.url}", flushInterval: 20ms }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`)
  const agent = new Agent({ connect: { ca: ca.cert } })
  t.teardown(async () => { await agent.close(); await secure.close() })
  const trace = '5e'.repeat(16)
  const res = await request(`${secure.url}/items`, { dispatcher: agent, headers: { traceparent: `00-${trace}-${'12'.repeat(8)}-01` } })
  await res.body.dump()
  t.equal(res.statusCode, 200)
  t.ok(await until(() => spansOf(trace).length === 2))
  t.equal(spansOf(trace).find(s => s.kind === SERVER)?.attributes['url.scheme'], 'https')
})

t.test('exports that fail never touch requests: counted and logged once', async t => {
  const worksAgain = () => gw.logs.filter(l => l.msg === 'span export works again')
  t.equal(worksAgain().length, 0, 'nothing logged while exports work')
  const failedBefore = await metricValue(gw.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="failed"}')
  t.ok(await metricValue(gw.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="exported"}') >= 2, 'exported spans are counted')
  receiver.setMode('refuse')
  t.teardown(() => { receiver.setMode('accept') })
  for (let i = 0; i < 3; i++) t.equal((await traced('/items/9', `refused-export-${i}`)).status, 200)
  t.ok(await until(() => gw.logs.some(l => l.msg?.toString().startsWith('span export failed'))), 'a warning is logged')
  t.ok(await until(() => receiver.exports.length > 0 && gw.logs.filter(l => l.msg?.toString().startsWith('span export failed')).length === 1))
  const failed = await metricSettles(gw.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="failed"}', failedBefore + 6)
  t.equal(failed - failedBefore, 6, 'the six spans of three requests are counted as failed')
  // One more failed export, after the others were counted: a failure while failing is no recovery.
  await traced('/items/9', 'refused-export-3')
  t.equal(await metricSettles(gw.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="failed"}', failedBefore + 8), failedBefore + 8)
  t.equal(worksAgain().length, 0, 'no recovery logged during the outage')
  receiver.setMode('accept')
  const exported = 'portcullis_opentelemetry_spans_total{result="exported"}'
  const exportedBefore = await metricValue(gw.adminUrl as string, exported)
  await traced('/items/10', 'export-back')
  t.ok(await until(() => worksAgain().length > 0))
  // The next export, once counted (after the exporter's callback has run).
  t.equal(await metricSettles(gw.adminUrl as string, exported, exportedBefore + 2), exportedBefore + 2)
  await traced('/items/11', 'export-back-2')
  t.equal(await metricSettles(gw.adminUrl as string, exported, exportedBefore + 4), exportedBefore + 4, 'the next export')
  t.equal(worksAgain().length, 1, 'logged once')
  t.equal(worksAgain()[0]?.endpoint, receiver.url)
})

t.test('a full queue drops spans, counted; an unreachable endpoint costs requests nothing', async t => {
  const held = await startOtlpReceiver()
  held.setMode('hold')
  const small = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${held.url}", maxQueueSize: 1, timeout: 30s }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
  - { name: nowhere, match: { path: /nowhere }, upstream: ok, plugins: { opentelemetry: { endpoint: "http://127.0.0.1:${gonePort}/v1/traces", timeout: 200ms, flushInterval: 10ms } } }
`, { admin: true })
  t.teardown(async () => { held.setMode('accept'); held.release(); await small.close(); await held.close() })
  for (let i = 0; i < 3; i++) {
    const res = await request(`${small.url}/items`)
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  // The first span went out in an export the receiver holds; the queue (1) took the next; 4 dropped.
  t.ok(await until(() => small.logs.filter(l => l.msg === 'request').length === 3))
  t.equal(await metricSettles(small.adminUrl as string, 'portcullis_opentelemetry_spans_total{result="dropped"}', 4), 4)
  // The held export may still be on its way to the receiver on a busy machine.
  t.ok(await until(() => held.exports.length > 0), 'an export reached the receiver')
  t.equal(held.exports.length, 1, 'one export under way, held')
  for (let i = 0; i < 3; i++) {
    const res = await request(`${small.url}/nowhere`)
    t.equal(res.statusCode, 200, 'answered while the endpoint refuses connections')
    await res.body.dump()
  }
  t.ok(await until(() => small.logs.some(l => l.msg?.toString().startsWith('span export failed') && l.endpoint === `http://127.0.0.1:${gonePort}/v1/traces`)))
})

t.test('closing the gateway exports the spans still queued', async t => {
  const late = await startOtlpReceiver()
  t.teardown(() => late.close())
  const g = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${late.url}", flushInterval: 1h }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`)
  const trace = 'ab'.repeat(16)
  const res = await request(`${g.url}/items`, { headers: { traceparent: `00-${trace}-${'cd'.repeat(8)}-01` } })
  await res.body.dump()
  t.ok(await until(() => g.logs.some(l => l.msg === 'request')))
  t.equal(late.spans.length, 0, 'nothing sent before the flush interval')
  await g.close()
  t.equal(late.spans.filter(s => s.traceId === trace).length, 2, 'both spans exported at shutdown')
})

t.test('a timeout or flushInterval under 1ms or over 1h, or an endpoint without a host, is a config error, at its key', async t => {
  for (const [key, value, message] of [['timeout', '0', 'must be from 1ms to 1h: '], ['flushInterval', '0s', 'must be from 1ms to 1h: '], ['timeout', '0.1ms', 'must be from 1ms to 1h: '],
    // Past 24.8 days the SDK's timers fire after 1 ms, with a warning line on every export.
    ['timeout', '13d', 'must be from 1ms to 1h: '], ['flushInterval', '61m', 'must be from 1ms to 1h: '],
    // The SDK's own "Invalid URL" named no route or key, and came only at start.
    ['endpoint', '"http://"', 'is not a URL: ']]) {
    const err = await startGateway(`
upstreams: { ok: { targets: [ { url: "${ok.url}" } ] } }
routes:
  - { name: r, match: { path: /r }, upstream: ok, plugins: { opentelemetry: { ${key}: ${value} } } }
`).then(async g => { await g.close(); return '' }, (e: Error) => e.message)
    t.match(err, new RegExp(`test\\.yaml:6:\\d+ routes\\[0\\]\\.plugins\\.opentelemetry\\.${key}: ${message}`), `${key}: ${value}`)
  }
})

t.test('an empty header or resource attribute name is a config error', async t => {
  const messages = { headers: 'is not a valid header name, or is a hop-by-hop or framing header', resourceAttributes: 'is not a valid name: it must not be empty' }
  for (const [key, message] of Object.entries(messages)) {
    const err = await startGateway(`
upstreams: { ok: { targets: [ { url: "${ok.url}" } ] } }
routes:
  - { name: r, match: { path: /r }, upstream: ok, plugins: { opentelemetry: { ${key}: { "": x } } } }
`).then(async g => { await g.close(); return '' }, (e: Error) => e.message)
    t.match(err, new RegExp(`routes\\[0\\]\\.plugins\\.opentelemetry\\.${key}\\.: "" ${message}`), key)
  }
})
