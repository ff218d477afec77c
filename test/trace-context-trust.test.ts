import t, { type Test } from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'
import { startOtlpReceiver } from './helpers/otlp-receiver.ts'
import { waitForLog } from './helpers/logs.ts'
import { issues } from './helpers/config-issues.ts'
import { until } from './helpers/wait.ts'

// server.traceContext: whose traceparent, tracestate and baggage the gateway continues. The
// caller here is a test client on 127.0.0.1; the upstream echoes the headers it got.
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
// A trace id a ratio sampler records at any ratio (it decides by the id's low bits).
const LOW_TRACE = '0'.repeat(31) + '1'
const CALLER = { traceparent: `00-${CALLER_TRACE}-00f067aa0ba902b7-00`, tracestate: 'vendor=abc', baggage: 'user=42' }
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

const up = await startUpstream()
t.teardown(() => up.close())

async function gatewayWith (t: Test, server: string, plugins = ''): Promise<TestGateway> {
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
${server}
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u${plugins} }
`)
  t.teardown(() => gw.close())
  return gw
}

/** What the upstream got of the trace context, and the access log's trace id. */
async function sent (gw: TestGateway, headers: Record<string, string> = CALLER) {
  const id = `r-${Math.random()}`
  const res = await request(`${gw.url}/a`, { headers: { ...headers, 'x-request-id': id } })
  const body = await res.body.json() as { headers: Record<string, string | undefined> }
  const [, traceId, spanId, flags] = TRACEPARENT.exec(body.headers.traceparent ?? '') ?? []
  const line = await waitForLog(gw.logs, { requestId: id, msg: 'request' })
  return { traceId, spanId, flags, tracestate: body.headers.tracestate, baggage: body.headers.baggage, logged: line?.traceId }
}

function continues (t: Test, got: Awaited<ReturnType<typeof sent>>) {
  t.equal(got.traceId, CALLER_TRACE, "the caller's trace id goes on")
  t.equal(got.flags, '00', "and its flags")
  t.equal(got.tracestate, CALLER.tracestate, 'tracestate passed on')
  t.equal(got.baggage, CALLER.baggage, 'baggage passed on')
  t.equal(got.logged, CALLER_TRACE, 'the access log has the caller\'s trace id')
}

function restarts (t: Test, got: Awaited<ReturnType<typeof sent>>) {
  t.match(got.traceId, /^[0-9a-f]{32}$/)
  t.not(got.traceId, CALLER_TRACE, 'a new trace id, not the caller\'s')
  t.equal(got.flags, '01', 'sampled, as any new trace')
  t.equal(got.tracestate, undefined, "the caller's tracestate not sent upstream")
  t.equal(got.baggage, undefined, "the caller's baggage not sent upstream")
  t.equal(got.logged, got.traceId, 'the access log has the new trace id')
}

t.test('default (continue): any caller\'s trace context goes on', async t => {
  continues(t, await sent(await gatewayWith(t, '')))
})

t.test('restart: a caller\'s traceparent, tracestate and baggage are ignored, even a trusted proxy\'s', async t => {
  const gw = await gatewayWith(t, '  trustProxy: true\n  traceContext: restart')
  const [a, b] = [await sent(gw), await sent(gw)]
  restarts(t, a)
  restarts(t, b)
  t.not(a.traceId, b.traceId, 'a trace of its own per request')
  t.equal((await sent(gw, { 'user-agent': 'x', baggage: 'user=42' })).baggage, undefined, 'baggage without a traceparent is not sent either')
})

t.test('trustedProxies: continued from a peer trustProxy trusts, restarted from any other', async t => {
  continues(t, await sent(await gatewayWith(t, '  trustProxy: [127.0.0.1]\n  traceContext: trustedProxies')))
  restarts(t, await sent(await gatewayWith(t, '  trustProxy: [10.0.0.0/8]\n  traceContext: trustedProxies')))
  restarts(t, await sent(await gatewayWith(t, '  traceContext: trustedProxies')))
})

t.test('an unknown value is a config error', async t => {
  t.same(await issues(t, 'server:\n  listen: { port: 8080 }\n  traceContext: trusted\nupstreams: {}\nroutes: []\n'),
    ['gw.yaml:3:17 server.traceContext: must be continue, trustedProxies or restart'])
})

t.test('opentelemetry follows: a caller not trusted neither forces nor hides its requests\' sampling', async t => {
  const receiver = await startOtlpReceiver()
  t.teardown(() => receiver.close())
  const at = (ratio: number) => gatewayWith(t, '  traceContext: restart',
    `, plugins: { opentelemetry: { endpoint: "${receiver.url}", samplingRatio: ${ratio}, flushInterval: 20ms } }`)
  // Ratio 0: a client's sampled flag and low trace id no longer get its request recorded.
  const none = await at(0)
  const forced = await sent(none, { traceparent: `00-${LOW_TRACE}-00f067aa0ba902b7-01` })
  t.not(forced.traceId, LOW_TRACE, "not the caller's trace id")
  t.equal(forced.flags, '00', 'not sampled: the ratio decided')
  // Ratio 1: a client's unsampled flag no longer hides its request.
  const all = await at(1)
  const hidden = await sent(all)
  t.not(hidden.traceId, CALLER_TRACE)
  t.equal(hidden.flags, '01', 'sampled: the ratio decided')
  t.ok(await until(() => receiver.spans.filter(s => s.traceId === hidden.traceId).length === 2, 10_000), 'its spans exported')
  const server = receiver.spans.find(s => s.traceId === hidden.traceId && s.kind === 2)
  t.equal(server?.parentSpanId, '', 'the server span is a root, not the caller\'s child')
  t.equal(hidden.tracestate, undefined)
  t.equal(hidden.baggage, undefined)
})
