import t from 'tap'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gunzipSync } from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { h2Connect, h2Request } from '../../test/helpers/http2.ts'
import { until } from '../../test/helpers/wait.ts'

// What the exporter sends and logs, seen by a receiver that keeps every export as it came (any
// path and query, gzip bodies too): headers, and spans as OTLP JSON has them.
interface RawSpan { traceId: string, kind: number, traceState?: string, attributes: Array<{ key: string, value: { stringValue?: string } }> }
interface RawExport { headers: IncomingHttpHeaders, spans: RawSpan[] }

async function startRawReceiver () {
  const exports: RawExport[] = []
  let refuse = false
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const raw = Buffer.concat(chunks)
      const body = JSON.parse((req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString()) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: RawSpan[] }> }> }
      exports.push({ headers: req.headers, spans: body.resourceSpans.flatMap(rs => rs.scopeSpans.flatMap(ss => ss.spans)) })
      res.writeHead(refuse ? 400 : 200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    exports,
    spans: () => exports.flatMap(e => e.spans),
    setRefuse (r: boolean) { refuse = r },
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

const SERVER = 2
const attribute = (span: RawSpan | undefined, key: string) => span?.attributes.find(a => a.key === key)?.value.stringValue

const receiver = await startRawReceiver()
const ok = await startUpstream((_req, res) => { res.writeHead(200).end('ok') })
t.teardown(async () => { await ok.close(); await receiver.close() })

t.test('the export lines hide the endpoint\'s user, password and query values, and name every route of the exporter', async t => {
  const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "http://otel-user:PASSWORDSECRET@127.0.0.1:${receiver.port}/v1/traces?api_key=QUERYSECRET", flushInterval: 10ms }
routes:
  - { name: first, match: { path: /first }, upstream: ok }
  - { name: second, match: { path: /second }, upstream: ok }
`)
  t.teardown(() => { receiver.setRefuse(false); return gw.close() })
  const get = async (path: string) => { await (await request(`${gw.url}${path}`)).body.dump() }
  receiver.setRefuse(true)
  await get('/second')
  t.ok(await until(() => gw.logs.some(l => l.msg?.toString().startsWith('span export failed'))), 'the failure is logged')
  receiver.setRefuse(false)
  await get('/first')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'span export works again')), 'the recovery is logged')
  const shown = `http://[redacted]@127.0.0.1:${receiver.port}/v1/traces?api_key=[redacted]`
  for (const line of gw.logs.filter(l => l.plugin === 'opentelemetry')) {
    t.equal(line.endpoint, shown, `${String(line.msg)}: the endpoint without its secrets`)
    t.same(line.routes, ['first', 'second'], `${String(line.msg)}: every route whose spans it exports`)
  }
  t.notMatch(JSON.stringify(gw.logs), /PASSWORDSECRET|QUERYSECRET/, 'no secret in any line')
})

t.test('OTEL_* variables of the gateway\'s process do not change its exports: the config is the one source', async t => {
  const env = {
    OTEL_EXPORTER_OTLP_HEADERS: 'x-env-token=ENVSECRET',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-traces-token=ENVSECRET',
    OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '3'
  }
  const saved = Object.keys(env).map(name => [name, process.env[name]] as const)
  Object.assign(process.env, env)
  const restore = () => { for (const [name, value] of saved) if (value === undefined) delete process.env[name]; else process.env[name] = value }
  t.teardown(restore)
  const gw = await startGateway(`
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "http://127.0.0.1:${receiver.port}/v1/traces", headers: { x-api-key: configured }, flushInterval: 10ms }
routes:
  - { name: env, match: { path: /env-check }, upstream: ok }
`)
  t.teardown(() => gw.close())
  t.equal(process.env.OTEL_EXPORTER_OTLP_HEADERS, 'x-env-token=ENVSECRET', 'the variables are left as they were')
  const trace = 'e7'.repeat(16)
  await (await request(`${gw.url}/env-check`, { headers: { traceparent: `00-${trace}-${'12'.repeat(8)}-01` } })).body.dump()
  t.ok(await until(() => receiver.exports.some(e => e.spans.some(s => s.traceId === trace))))
  const sent = receiver.exports.find(e => e.spans.some(s => s.traceId === trace))
  t.equal(sent?.headers['x-api-key'], 'configured', 'the configured header')
  t.equal(sent?.headers['x-env-token'], undefined, 'not OTEL_EXPORTER_OTLP_HEADERS')
  t.equal(sent?.headers['x-traces-token'], undefined, 'not OTEL_EXPORTER_OTLP_TRACES_HEADERS')
  t.equal(sent?.headers['content-encoding'], undefined, 'not OTEL_EXPORTER_OTLP_COMPRESSION')
  t.equal(attribute(sent?.spans.find(s => s.kind === SERVER), 'url.path'), '/env-check', 'attributes whole, whatever OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT says')
})

t.test('the server span keeps the caller\'s tracestate; over HTTP/2 its network.protocol.version is "2"', async t => {
  const gw = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  ok: { targets: [ { url: "${ok.url}" } ] }
plugins:
  opentelemetry: { endpoint: "http://127.0.0.1:${receiver.port}/v1/traces", flushInterval: 10ms }
routes:
  - { name: items, match: { path: /items }, upstream: ok }
`)
  t.teardown(() => gw.close())
  const h1 = 'a9'.repeat(16)
  await (await request(`${gw.url}/items`, { headers: { traceparent: `00-${h1}-${'12'.repeat(8)}-01`, tracestate: 'vendor=abc,other=1' } })).body.dump()
  const session = await h2Connect(gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  const h2 = 'b8'.repeat(16)
  t.equal((await h2Request(session, { ':path': '/items', traceparent: `00-${h2}-${'12'.repeat(8)}-01` })).status, 200)
  const server = (trace: string) => receiver.spans().find(s => s.traceId === trace && s.kind === SERVER)
  t.ok(await until(() => server(h1) !== undefined && server(h2) !== undefined), 'both server spans exported')
  t.equal(server(h1)?.traceState, 'vendor=abc,other=1', "the caller's tracestate")
  t.equal(attribute(server(h1), 'network.protocol.version'), '1.1')
  t.equal(attribute(server(h2), 'network.protocol.version'), '2')
})

t.test('the server span\'s tracestate is the one the upstream gets: bounded as W3C Trace Context says, none if invalid', async t => {
  const echo = await startUpstream()
  const gw = await startGateway(`
upstreams:
  echo: { targets: [ { url: "${echo.url}" } ] }
plugins:
  opentelemetry: { endpoint: "http://127.0.0.1:${receiver.port}/v1/traces", flushInterval: 10ms }
routes:
  - { name: items, match: { path: /items }, upstream: echo }
`)
  t.teardown(async () => { await gw.close(); await echo.close() })
  // Over 512 characters with a long member first: dropped first (the SDK's own parsing kept it and
  // dropped the later ones). An invalid member: the SDK kept the others.
  const long = `long=${'y'.repeat(150)}`
  const cases = { wide: [long, ...Array.from({ length: 7 }, (_, i) => `k${i}=${'x'.repeat(58)}`)].join(','), invalid: 'vendor=abc,Bad=1' }
  for (const [name, tracestate] of Object.entries(cases)) {
    const trace = (name === 'wide' ? 'c7' : 'd6').repeat(16)
    const res = await request(`${gw.url}/items`, { headers: { traceparent: `00-${trace}-${'12'.repeat(8)}-01`, tracestate } })
    const upstream = ((await res.body.json()) as { headers: Record<string, string | undefined> }).headers.tracestate
    const server = () => receiver.spans().find(s => s.traceId === trace && s.kind === SERVER)
    t.ok(await until(() => server() !== undefined), `${name}: server span exported`)
    const state = server()?.traceState
    t.equal(state === '' ? undefined : state, upstream, `${name}: the same as the upstream's`)
  }
  t.notOk(receiver.spans().find(s => s.traceId === 'c7'.repeat(16))?.traceState?.includes('long='), 'the long member dropped')
})
