import t from 'tap'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { until } from '../../test/helpers/wait.ts'
import { startOtlpReceiver } from '../../test/helpers/otlp-receiver.ts'

// The latency histogram's exemplars lead to a trace: on a route this plugin traces, only a request
// it samples becomes one (an unsampled one leaves the bucket's exemplar in place). Exemplars named
// every request: at samplingRatio 0.01, 4 of them after 50 requests, none an exported trace.
// `answered` has no upstream try: its server span starts in onFinished, after the request's count.
const receiver = await startOtlpReceiver()
const up = await startUpstream()
t.teardown(() => Promise.all([receiver.close(), up.close()]))
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${receiver.url}", flushInterval: 10ms }
routes:
  - { name: proxied, match: { path: /proxied }, upstream: up }
  - { name: answered, match: { path: /answered }, upstream: up, plugins: { request-termination: { status: 200, body: ok } } }
  - { name: none-sampled, match: { path: /none-sampled }, upstream: up, plugins: { opentelemetry: { endpoint: "${receiver.url}", samplingRatio: 0, flushInterval: 10ms } } }
  - { name: untraced, match: { path: /untraced }, upstream: up, plugins: { opentelemetry: false } }
`, { admin: true })
t.teardown(() => gw.close())

const newTrace = () => randomBytes(16).toString('hex')
/** Sends a request to `path`, with a traceparent of `flags` for `trace` when given. */
async function send (path: string, trace?: string, flags = '01') {
  const headers = trace === undefined ? {} : { traceparent: `00-${trace}-${'ab'.repeat(8)}-${flags}` }
  await (await request(`${gw.url}${path}`, { headers })).body.dump()
}

/** The exemplars' trace ids of `route`'s latency buckets, from an OpenMetrics scrape. */
async function exemplars (route: string): Promise<string[]> {
  const res = await request(`${gw.adminUrl}/metrics`, { headers: { accept: 'application/openmetrics-text' } })
  const text = await res.body.text()
  const line = new RegExp(`^portcullis_http_request_duration_seconds_bucket\\{le="[^"]+",route="${route}"\\} \\d+ # \\{trace_id="([0-9a-f]{32})"\\}`, 'gm')
  return [...text.matchAll(line)].map(m => m[1] as string)
}

for (const route of ['proxied', 'answered']) {
  t.test(`${route}: a sampled request is an exemplar, unsampled ones (caller's flag 00) never`, async t => {
    const sampled = newTrace()
    await send(`/${route}`, sampled, '01')
    const unsampled = Array.from({ length: 20 }, newTrace)
    for (const trace of unsampled) await send(`/${route}`, trace, '00')
    const found = await exemplars(route)
    t.same(found, [sampled], 'the sampled trace only, still there after the unsampled ones')
    t.ok(await until(() => receiver.spans.some(s => s.traceId === sampled)), 'and its spans were exported')
  })
}

t.test('samplingRatio 0: new traces are never exemplars', async t => {
  for (let i = 0; i < 20; i++) await send('/none-sampled')
  t.same(await exemplars('none-sampled'), [])
})

t.test('a route without the plugin: every request is an exemplar, the access log\'s trace id', async t => {
  const trace = newTrace()
  await send('/untraced', trace, '00')
  t.same(await exemplars('untraced'), [trace])
})
