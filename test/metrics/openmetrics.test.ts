import t from 'tap'
import { spawnSync } from 'node:child_process'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway } from '../helpers/gateway.ts'
import { waitForLog } from '../helpers/logs.ts'
import { startPrometheus } from '../helpers/prometheus.ts'
import { waitFor } from '../reload/helpers.ts'

// /metrics in both formats from a real gateway: OpenMetrics (with the trace id of a request as
// the exemplar of its latency bucket) when the scraper asks for it, Prometheus text otherwise.
const up = await startUpstream((_req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }).end('ok') })
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u }
`, { admin: true })
t.teardown(() => gw.close())

const TRACE = '0af7651916cd43dd8448eb211c80319c'
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1'

async function scrape (accept?: string) {
  const res = await request(`${gw.adminUrl}/metrics`, { headers: accept === undefined ? {} : { accept } })
  return { type: res.headers['content-type'], vary: res.headers.vary, text: await res.body.text() }
}

function promtool (text: string) {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

const res = await request(`${gw.url}/a`, { headers: { traceparent: `00-${TRACE}-b7ad6b7169203331-01`, 'x-request-id': 'exemplar-1' } })
await res.body.dump()
const logged = await waitForLog(gw.logs, { requestId: 'exemplar-1', msg: 'request' })

t.test('OpenMetrics when the scraper asks for it: _total samples, # EOF, the trace id as exemplar', async t => {
  const { type, vary, text } = await scrape(PROMETHEUS_ACCEPT)
  t.equal(type, 'application/openmetrics-text; version=1.0.0; charset=utf-8')
  t.equal(vary, 'Accept')
  t.ok(text.endsWith('\n# EOF\n'), 'ends with # EOF')
  t.match(text, /^# TYPE portcullis_http_requests counter$/m, 'a counter family is named without _total')
  t.match(text, /^portcullis_http_requests_total\{route="a",method="GET",status="200"\} 1$/m, 'its sample with it')
  const exemplars = text.split('\n').filter(l => l.startsWith('portcullis_http_request_duration_seconds_bucket{') && l.includes(' # {'))
  t.equal(exemplars.length >= 1, true, 'the latency histogram has an exemplar')
  const m = /^portcullis_http_request_duration_seconds_bucket\{le="([^"]+)",route="a"\} 1 # \{trace_id="([0-9a-f]{32})"\} ([0-9.e-]+) ([0-9.]+)$/.exec(exemplars[0] as string)
  t.ok(m, `an exemplar line: ${exemplars[0]}`)
  t.equal(m?.[2], TRACE, "the exemplar's trace_id is the request's")
  t.equal(logged?.traceId, TRACE, 'the one the access log has')
  t.ok(Number(m?.[3]) > 0 && Number(m?.[3]) <= Number(m?.[1]), 'its value lies in its bucket')
  t.ok(Math.abs(Number(m?.[4]) - Date.now() / 1000) < 60, 'its timestamp is in seconds, recent')
  t.notMatch(text, /portcullis_gateway_overhead_seconds_bucket\{[^}]*\} \d+ #/, 'no exemplars on the other histograms')
})

t.test('Prometheus text otherwise, unchanged by an OpenMetrics scrape before it', async t => {
  for (const accept of [undefined, 'text/plain;version=0.0.4', 'text/plain;q=0.5, application/openmetrics-text;q=0.3', '*/*']) {
    const { type, text } = await scrape(accept)
    t.equal(type, 'text/plain; version=0.0.4; charset=utf-8', `Accept: ${accept}`)
    t.match(text, /^# TYPE portcullis_http_requests_total counter$/m)
    t.match(text, /^portcullis_http_requests_total\{route="a",method="GET",status="200"\} 1$/m)
    t.match(text, /^portcullis_http_request_duration_seconds_bucket\{le="30",route="a"\} 1$/m)
    t.notMatch(text, /# \{trace_id/, 'no exemplars')
    t.notMatch(text, /# EOF/)
  }
})

t.test('promtool checks the Prometheus text (its only lint findings: prom-client\'s own process gauges)', async t => {
  const r = promtool((await scrape()).text)
  t.notMatch(r.output, /parsing error/, 'it parses')
  // prom-client names three default gauges *_total; promtool 2.42 cannot turn lint off.
  const findings = r.output.split('\n').filter(l => l !== '' && !/^portcullis_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(l))
  t.same(findings, [], 'no other finding')
})

// promtool 2.42 reads only the Prometheus text format: the OpenMetrics exposition is checked by a
// real Prometheus scraping it (it asks for OpenMetrics first) and storing its exemplars.
t.test('a real Prometheus scrapes the OpenMetrics exposition and stores the trace id as exemplar', async t => {
  const prom = await startPrometheus(`global: { scrape_interval: 1s }
scrape_configs:
  - job_name: portcullis
    static_configs: [ { targets: ["${new URL(gw.adminUrl as string).host}"] } ]
`, ['--enable-feature=exemplar-storage'])
  t.teardown(() => prom.close())
  const api = prom.api
  const exemplars = async () => {
    try {
      const now = Date.now() / 1000
      const r = await (await request(`${api}/query_exemplars?query=${encodeURIComponent('portcullis_http_request_duration_seconds_bucket{route="a"}')}&start=${now - 600}&end=${now + 60}`)).body.json() as
        { data?: Array<{ exemplars: Array<{ labels: Record<string, string>, value: string }> }> }
      const found = (r.data ?? []).flatMap(s => s.exemplars)
      return found.length > 0 ? found : undefined
    } catch { return undefined }
  }
  const found = await waitFor(exemplars, 60_000)
  t.ok(found, 'Prometheus stored exemplars from the scrape')
  t.same(found?.map(e => e.labels), [{ trace_id: TRACE }], "the request's trace id")
  const up = await (await request(`${api}/query?query=${encodeURIComponent('portcullis_http_requests_total{route="a"}')}`)).body.json() as { data: { result: Array<{ value: [number, string] }> } }
  t.equal(up.data.result[0]?.value[1], '1', 'counters read back under their _total names')
})
