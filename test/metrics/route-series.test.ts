import t from 'tap'
import { request } from 'undici'
import { Metrics } from '../../src/metrics/metrics.ts'
import { clusterMetricsText, type AppliedConfig } from '../../src/workers/cluster-metrics.ts'
import type { WorkerPool } from '../../src/workers/worker-pool.ts'
import { configFile, gatewayYaml, startFromFile, waitFor } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { fresh, startCluster } from '../workers/helpers.ts'

// A route's request series appear at its first request, not at config load: a gateway of thousands
// of routes, few of them with traffic, scrapes the series of those few.

/** The value of one sample in a Prometheus text exposition, or undefined when absent. */
function sample (text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${name}{${labels}} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

/** The samples of `text` whose labels name `route` (or the `upstream`, with that label). */
const of = (text: string, name: string, label = 'route') => text.split('\n').filter(l => l.includes(`${label}="${name}"`))

t.test('a route without traffic has no series; its series appear at its first request', async t => {
  const up = await startUpstream()
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove() })
  const idle = Array.from({ length: 50 }, (_, i) => `  - { name: idle${i}, match: { path: /idle${i} }, upstream: v }`).join('\n')
  await cf.write(gatewayYaml({ u: [up.url], v: [up.url] }, `  - { name: a, match: { path: /a }, upstream: u }\n${idle}`))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()

  const before = await metrics()
  t.same(of(before, 'a'), [], 'no series of a route not requested yet')
  t.same(of(before, 'idle0'), [])
  t.same(of(before, 'u', 'upstream').filter(l => l.startsWith('portcullis_upstream_response_duration_seconds')), [], 'nor of its upstream\'s response time')
  t.match(before, /^portcullis_http_requests_in_flight 0$/m, 'the gateway-wide gauge is there')

  await (await request(`${gw.url}/a`, { method: 'POST', body: 'four' })).body.dump()
  const after = await metrics()
  t.equal(sample(after, 'portcullis_http_requests_total', 'route="a",method="POST",status="200"'), 1)
  t.equal(sample(after, 'portcullis_http_request_duration_seconds_count', 'route="a"'), 1, 'the duration histogram, at its first request')
  t.equal(of(after, 'a').filter(l => l.startsWith('portcullis_http_request_duration_seconds_bucket')).length, 16, 'with every bucket')
  t.equal(sample(after, 'portcullis_gateway_overhead_seconds_count', 'route="a"'), 1)
  t.equal(sample(after, 'portcullis_http_request_bytes_total', 'route="a"'), 4)
  t.equal(sample(after, 'portcullis_upstream_response_duration_seconds_count', 'upstream="u"'), 1, 'its upstream\'s, at the first try answered')
  t.same(of(after, 'idle0'), [], 'the routes without traffic still have none')
  t.same(of(after, 'v', 'upstream').filter(l => l.startsWith('portcullis_upstream_response_duration_seconds')), [], 'nor their upstream')
})

t.test('a route\'s byte counters come at 0 with its first request, bodies or not: its first upload is an increase', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.writeHead(204).end() })
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove() })
  await cf.write(gatewayYaml({ u: [up.url] }, '  - { name: a, match: { path: /a }, upstream: u }'))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()

  await (await request(`${gw.url}/a`)).body.dump()
  let text = await metrics()
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="a",method="GET",status="204"'), 1)
  t.equal(sample(text, 'portcullis_http_request_bytes_total', 'route="a"'), 0, 'request bytes at 0 after a GET')
  t.equal(sample(text, 'portcullis_http_response_bytes_total', 'route="a"'), 0, 'response bytes at 0 after a 204')

  await (await request(`${gw.url}/a`, { method: 'POST', body: 'four' })).body.dump()
  text = await metrics()
  t.equal(sample(text, 'portcullis_http_request_bytes_total', 'route="a"'), 4, 'the first upload counts on from 0')
})

t.test('reloads: removed routes lose their series, kept ones count on, a kept route without traffic has none', async t => {
  const up = await startUpstream()
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await cf.remove() })
  const yaml = (names: string[]) => gatewayYaml({ u: [up.url] }, names.map(n => `  - { name: ${n}, match: { path: /${n} }, upstream: u }`).join('\n'))
  await cf.write(yaml(['kept', 'idle', 'gone']))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()
  await (await request(`${gw.url}/kept`)).body.dump()
  await (await request(`${gw.url}/gone`)).body.dump()

  const retired = gw.gateway.runtime
  await cf.write(yaml(['kept', 'idle', 'added']))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  await retired.dispose()
  let text = await metrics()
  t.same(of(text, 'gone'), [], 'a removed route\'s series are gone')
  t.same(of(text, 'idle'), [], 'a kept route that had no traffic has none')
  t.same(of(text, 'added'), [], 'nor a route the reload added')
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="kept"'), 1, 'a kept route keeps its series')

  await (await request(`${gw.url}/kept`)).body.dump()
  await (await request(`${gw.url}/idle`)).body.dump()
  text = await metrics()
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="kept"'), 2, 'and counts on in the new config')
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="kept",method="GET",status="200"'), 2)
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="idle"'), 1, 'the idle route\'s appear at its first request')
  t.same(of(text, 'added'), [])
})

t.test('a route with metrics: { requests: false } is in no metric by route; in flight and its upstream\'s response time still count it', async t => {
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const up = await startUpstream((req, res) => {
    req.resume()
    if (req.url === '/hold') void held.then(() => res.writeHead(200).end('late'))
    else res.writeHead(200).end('quick')
  })
  const cf = await configFile('')
  t.teardown(async () => { release(); await up.close(); await cf.remove() })
  await cf.write(gatewayYaml({ u: [up.url], n: [up.url] }, `  - { name: counted, match: { path: /counted }, upstream: u }
  - { name: noisy, match: { path: /* }, upstream: n, websocket: false, metrics: { requests: false } }`))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metrics = async () => await (await request(`${gw.adminUrl}/metrics`)).body.text()

  const answer = request(`${gw.url}/hold`)
  t.ok(await waitFor(async () => /^portcullis_http_requests_in_flight 1$/m.test(await metrics()) ? true : undefined), 'in flight counts it')
  release()
  t.equal(await (await answer).body.text(), 'late')
  await (await request(`${gw.url}/x`, { method: 'POST', body: 'body' })).body.dump()
  const port = Number(new URL(gw.url).port)
  t.equal((await rawRequest(port, ['GET /x HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])).status, 400, 'refused before its plugins')
  await (await request(`${gw.url}/counted`)).body.dump()

  const text = await metrics()
  t.same(of(text, 'noisy'), [], 'no series names the route: requests, duration, overhead, bytes, refusals')
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="(unmatched)",method="GET",status="400"'), undefined, 'its refusal is not counted as unmatched either')
  t.equal(sample(text, 'portcullis_upstream_response_duration_seconds_count', 'upstream="n"'), 2, 'its upstream\'s response time counts its tries')
  t.match(text, /^portcullis_http_requests_in_flight 0$/m, 'and out of flight once answered')
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="counted",method="GET",status="200"'), 1, 'the other routes count as ever')
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="counted"'), 1)
})

/** A worker's answer: its own Metrics, with one request on each of `requested` (of routes a, b, idle). */
async function worker (pid: number, requested: string[]) {
  const metrics = new Metrics({ defaultMetrics: false })
  const routes = new Map(['a', 'b', 'idle'].map(name => [name, metrics.requests.forRoute(name, 'u')]))
  for (const name of requested) {
    const route = routes.get(name)
    route?.started()
    route?.upstreamAnswered(0.01)
    route?.finished('GET', 200, 0.02, 0.01, 0, 5)
  }
  return { pid, metrics: await metrics.registry.getMetricsAsJSON() }
}

t.test('workers: a route\'s series show once any worker has them, summed; a route no worker served has none', async t => {
  const pool = { pids: [1, 2], answers: [] as unknown[], metrics: async () => pool.answers }
  const applied = { hash: 'h', config: { routes: ['a', 'b', 'idle'].map(name => ({ name })), upstreams: { u: {} } } } as unknown as AppliedConfig
  pool.answers = [await worker(1, ['a', 'a']), await worker(2, ['a', 'b'])]
  for (const format of ['prometheus', 'openmetrics'] as const) {
    const text = await clusterMetricsText(new Metrics({ defaultMetrics: false }), pool as unknown as WorkerPool, format, applied)
    t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="a"'), 3, `${format}: summed over the workers`)
    t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="b"'), 1, `${format}: one worker's series shows`)
    t.equal(sample(text, 'portcullis_http_request_duration_seconds_bucket', 'le="+Inf",route="b"'), 1)
    t.equal(sample(text, 'portcullis_upstream_response_duration_seconds_count', 'upstream="u"'), 4)
    t.same(of(text, 'idle'), [], `${format}: no series of a route no worker served`)
  }
})

t.test('workers: a cluster scrapes the series of the routes requested only', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { url, admin } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, `  - { name: busy, match: { path: /busy }, upstream: u }
  - { name: idle, match: { path: /idle }, upstream: u }`)
  t.equal((await fresh(`${url}/busy`, 6)).filter(r => r.startsWith('200 ')).length, 6)
  const text = await waitFor(async () => {
    const text = await (await request(`${admin}/metrics`)).body.text()
    return sample(text, 'portcullis_http_request_duration_seconds_count', 'route="busy"') === 6 ? text : undefined
  }, 10_000)
  t.ok(text !== undefined, 'the busy route\'s six requests, summed over the workers')
  t.same(of(text ?? '', 'idle'), [], 'no series of the idle route')
})
