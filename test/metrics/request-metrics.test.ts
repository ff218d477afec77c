import t from 'tap'
import { request } from 'undici'
import { configFile, gatewayYaml, startFromFile } from '../reload/helpers.ts'
import { deadPort, startUpstream } from '../helpers/upstream.ts'
import { fileURLToPath } from 'node:url'
import { until } from '../helpers/wait.ts'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { startGateway } from '../helpers/gateway.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { waitForLog } from '../helpers/logs.ts'
import { rawRequest } from '../helpers/raw-http.ts'

const PROBE = fileURLToPath(new URL('../helpers/probe-plugin.ts', import.meta.url))

/** The value of one sample in a Prometheus text exposition, or undefined when absent. */
function sample (text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${name}{${labels}} `))
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1))
}

t.test('request metrics: every request by route, method and status, with latencies and bytes', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.writeHead(200, { 'content-length': '5' }).end('hello') })
  const dead = `http://127.0.0.1:${await deadPort()}` // refuses connections
  const silent = await startUpstream(() => {}) // never answers
  const cf = await configFile('')
  t.teardown(async () => { await up.close(); await silent.close(); await cf.remove() })
  const yaml = (extra = '') => gatewayYaml({ u: [up.url], gone: [dead], v: [up.url], silent: [silent.url] }, `  - { name: a, match: { path: /a }, upstream: u }
  - { name: upload, match: { path: /upload }, upstream: v }
  - { name: dead, match: { path: /dead }, upstream: gone }
  - { name: late, match: { path: /late }, upstream: silent, timeouts: { request: 100ms } }
  - { name: locked, match: { path: /locked }, upstream: u, plugins: { probe: { reply: 401 } } }`, `loadPlugins: ["${PROBE}"]\n${extra}`)
  await cf.write(yaml())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())

  for (let i = 0; i < 3; i++) await (await request(`${gw.url}/a`)).body.dump()
  await (await request(`${gw.url}/a`, { method: 'POST', body: 'twelve bytes' })).body.dump()
  await (await request(`${gw.url}/a`, { method: 'PROPFIND' })).body.dump()
  await (await request(`${gw.url}/nowhere`)).body.dump()
  const deadBody = await (await request(`${gw.url}/dead`)).body.text()
  const late = await request(`${gw.url}/late`)
  t.equal(late.statusCode, 504)
  const lateBody = await late.body.text()
  const locked = await request(`${gw.url}/locked`)
  const lockedBody = await locked.body.text()
  t.equal(locked.headers['content-type'], 'application/json; charset=utf-8', "a plugin's reply of an object is JSON")
  // Over the default requestBuffer (64 KiB): streamed, never read whole.
  await (await request(`${gw.url}/upload`, { method: 'POST', body: Buffer.alloc(70_000) })).body.dump()
  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()

  t.equal(sample(text, 'portcullis_http_requests_total', 'route="a",method="GET",status="200"'), 3)
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="a",method="POST",status="200"'), 1)
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="a",method="OTHER",status="200"'), 1, 'unknown methods are OTHER')
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="(unmatched)",method="GET",status="404"'), 1, 'requests no route took')
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="dead",method="GET",status="502"'), 1, 'upstream failures')
  t.equal(sample(text, 'portcullis_http_requests_total', 'route="locked",method="GET",status="401"'), 1, 'plugin answers')
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_count', 'route="a"'), 5)
  t.equal(sample(text, 'portcullis_gateway_overhead_seconds_count', 'route="a"'), 5)
  t.equal(sample(text, 'portcullis_upstream_response_duration_seconds_count', 'upstream="u"'), 5, 'one per try answered')
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_bucket', 'le="30",route="a"'), 5, 'buckets reach 30 s')
  t.equal(sample(text, 'portcullis_http_request_duration_seconds_bucket', 'le="0.0005",route="a"') !== undefined, true, 'and start at 0.5 ms')
  t.equal(sample(text, 'portcullis_http_response_bytes_total', 'route="a"'), 25)
  t.equal(sample(text, 'portcullis_http_response_bytes_total', 'route="dead"'), Buffer.byteLength(deadBody), "the 502's body, as the client got it")
  t.equal(sample(text, 'portcullis_http_response_bytes_total', 'route="late"'), Buffer.byteLength(lateBody), "the request timeout's 504, as the client got it")
  t.equal(sample(text, 'portcullis_http_response_bytes_total', 'route="locked"'), Buffer.byteLength(lockedBody), "the plugin's reply, as the client got it")
  t.equal(sample(text, 'portcullis_http_request_bytes_total', 'route="a"'), 12)
  t.equal(sample(text, 'portcullis_http_request_bytes_total', 'route="upload"'), 70000, 'a streamed body counts as received')
  t.equal(sample(text, 'portcullis_http_requests_in_flight', ''), undefined)
  t.match(text, /^portcullis_http_requests_in_flight 0$/m, 'nothing in flight once answered')
  const overhead = sample(text, 'portcullis_gateway_overhead_seconds_sum', 'route="a"') as number
  const total = sample(text, 'portcullis_http_request_duration_seconds_sum', 'route="a"') as number
  t.ok(overhead > 0 && overhead < total, 'the overhead is a part of the whole')
  t.equal(sample(text, 'portcullis_config_info', `hash="${gw.gateway.runtime.loaded.hash}"`), 1, 'the active config\'s hash')

  await cf.write(yaml('metrics: { requests: false }'))
  t.equal((await gw.reloader.reload('admin')).result, 'success')
  await (await request(`${gw.url}/a`)).body.dump()
  const after = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.equal(sample(after, 'portcullis_http_requests_total', 'route="a",method="GET",status="200"'), 3, 'switched off: not counted, earlier counts kept')
  t.equal(sample(after, 'portcullis_config_info', `hash="${gw.gateway.runtime.loaded.hash}"`), 1, 'the new hash')
  t.equal((after.match(/^portcullis_config_info\{/gm) ?? []).length, 1, 'and only it')
})

// Waiting for an upstream is the upstream's time, answered or not: the gateway's overhead is the rest.
t.test('a try that times out, or that the client or the request timeout abandons, is upstream time, not gateway overhead', async t => {
  const silent = await startUpstream(() => {}) // never answers
  const cf = await configFile('')
  t.teardown(async () => { await silent.close(); await cf.remove() })
  await cf.write(gatewayYaml({ silent: [silent.url] }, `  - { name: slow, match: { path: /slow }, upstream: silent, timeouts: { response: 300ms } }
  - { name: late, match: { path: /late }, upstream: silent, timeouts: { request: 300ms } }
  - { name: gone, match: { path: /gone }, upstream: silent }`))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())

  t.equal((await request(`${gw.url}/slow`)).statusCode, 504, 'response timeout')
  t.equal((await request(`${gw.url}/late`)).statusCode, 504, 'request timeout')
  // 400 ms on the client's clock, which starts before the gateway's: the gateway sees 0.29 s or more of it.
  await t.rejects(request(`${gw.url}/gone`, { signal: AbortSignal.timeout(400) }), 'the client gives up')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.status === 499)), 'its 499 logged')

  const text = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  for (const route of ['slow', 'late', 'gone']) {
    t.ok((sample(text, 'portcullis_http_request_duration_seconds_sum', `route="${route}"`) as number) >= 0.29, `${route}: the whole wait is its duration`)
    t.ok((sample(text, 'portcullis_gateway_overhead_seconds_sum', `route="${route}"`) as number) < 0.1, `${route}: not overhead`)
  }
  t.equal(sample(text, 'portcullis_upstream_response_duration_seconds_count', 'upstream="silent"'), undefined, 'answers only are observed as upstream response times: none, no series')
})

// Counted as received: a Content-Length is only the client's word (a huge one once made the counter useless for rate()).
t.test('request bytes: what the client sent, not what it declared', async t => {
  let uploaded = 0
  const up = await startUpstream((req, res) => {
    req.on('data', (c: Buffer) => { uploaded += c.length })
    req.on('end', () => res.end('ok'))
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`loadPlugins: ["${PROBE}"]
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: locked, match: { path: /locked }, upstream: u, plugins: { probe: { reply: 401 } } }
  - { name: cut, match: { path: /cut }, upstream: u }
  - { name: chunked, match: { path: /chunked }, upstream: u }
`, { admin: true })
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const bytes = (route: string) => metricValue(gw.adminUrl as string, `portcullis_http_request_bytes_total{route="${route}"}`)

  const locked = await rawRequest(port, ['POST /locked HTTP/1.1', 'Host: x', 'Content-Length: 18446744073709551615', 'Connection: close'])
  t.equal(locked.status, 401)
  await waitForLog(gw.logs, { msg: 'request', path: '/locked' })
  t.equal(await bytes('locked'), 0, 'a length declared and never sent counts nothing')

  // Over requestBuffer (64 KiB), so streamed: the upstream sees what arrived.
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => {})
  socket.write('POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n' + 'x'.repeat(1000))
  t.ok(await until(() => uploaded === 1000), 'the first 1000 bytes went through')
  socket.destroy()
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/cut' }), { status: 499 })
  t.equal(await bytes('cut'), 1000, 'an upload cut short counts what arrived')

  const chunked = await request(`${gw.url}/chunked`, { method: 'POST', body: Readable.from([Buffer.alloc(300), Buffer.alloc(400)]) })
  t.equal(chunked.statusCode, 200)
  await chunked.body.dump()
  await waitForLog(gw.logs, { msg: 'request', path: '/chunked' })
  t.equal(await bytes('chunked'), 700, 'a chunked body, which declares no length, counts too')
})
