import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer, type RawData } from 'ws'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { metricValue } from './helpers/metric-value.ts'
import { until } from './helpers/wait.ts'

/**
 * A ws echo server that refuses (401) upgrades whose URL contains "refuse"; remembers the headers
 * of each upgrade it accepted.
 */
async function echoServer (t: Test): Promise<{ url: string, upgrades: IncomingHttpHeaders[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, verifyClient: ({ req }: { req: IncomingMessage }) => req.url?.includes('refuse') !== true })
  const upgrades: IncomingHttpHeaders[] = []
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers)
    ws.on('message', (data: RawData, isBinary) => ws.send(data, { binary: isBinary }))
  })
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, upgrades }
}

async function gateway (t: Test, upstream: string, server = '', options: { admin?: boolean } = {}): Promise<TestGateway> {
  const gw = await startGateway(`${server}
upstreams:
  ws: { targets: [ { url: "${upstream}" } ] }
routes:
  - name: live
    match: { path: /live }
    upstream: ws
    plugins:
      request-headers: { set: { X-Via-Gateway: "yes" } }
  - name: no-ws
    match: { path: /plain }
    upstream: ws
    websocket: false
`, options)
  t.teardown(() => gw.close())
  return gw
}

/** Opens a WebSocket through the gateway; closed in teardown. */
async function connect (t: Test, url: string): Promise<{ ws: WebSocket, upgrade: IncomingMessage }> {
  const ws = new WebSocket(url)
  t.teardown(() => ws.terminate())
  // ws emits 'open' in the same tick as 'upgrade': listen for both at once.
  const upgraded = once(ws, 'upgrade') as Promise<[IncomingMessage]>
  await once(ws, 'open')
  return { ws, upgrade: (await upgraded)[0] }
}

async function roundTrip (ws: WebSocket, data: string | Buffer): Promise<{ data: Buffer, isBinary: boolean }> {
  const reply = once(ws, 'message') as Promise<[Buffer, boolean]>
  ws.send(data)
  const [got, isBinary] = await reply
  return { data: got, isBinary }
}

/** What the gateway answers to an upgrade request it refuses. */
async function refused (url: string): Promise<{ status: number, body: string, opened: boolean }> {
  const ws = new WebSocket(url)
  let opened = false
  ws.on('open', () => { opened = true })
  ws.on('error', () => {})
  const [, res] = await once(ws, 'unexpected-response') as [unknown, IncomingMessage]
  const chunks: Buffer[] = []
  for await (const c of res) chunks.push(c as Buffer)
  const body = Buffer.concat(chunks).toString()
  ws.terminate()
  return { status: res.statusCode ?? 0, body, opened }
}

t.test('WebSocket messages are relayed both ways', async t => {
  const up = await echoServer(t)
  const gw = await gateway(t, up.url)
  const { ws, upgrade } = await connect(t, `${gw.url.replace('http', 'ws')}/live`)
  t.equal(upgrade.statusCode, 101)
  t.ok(upgrade.headers['x-request-id'], 'the 101 carries the request id')

  const text = await roundTrip(ws, 'hello through the gateway')
  t.same([text.data.toString(), text.isBinary], ['hello through the gateway', false], 'text echoed as text')
  const payload = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 256))
  const binary = await roundTrip(ws, payload)
  t.equal(binary.isBinary, true, 'binary echoed as binary')
  t.ok(binary.data.equals(payload), 'binary payload intact')

  t.equal(up.upgrades.length, 1)
  t.equal(up.upgrades[0]?.['x-via-gateway'], 'yes', "the route's request plugins ran on the upgrade request")
  t.equal(up.upgrades[0]?.['x-request-id'], upgrade.headers['x-request-id'], 'same request id upstream')
  t.equal(up.upgrades[0]?.['x-forwarded-for'], '127.0.0.1', 'forwarded headers set')

  ws.close()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request')), 'logged once closed')
  t.match(gw.logs.find(l => l.msg === 'request'), { status: 101, path: '/live', requestId: upgrade.headers['x-request-id'] }, 'logged as 101, not as a client gone (499)')
})

t.test('a WebSocket session is counted, but its lifetime is no request duration or gateway overhead', async t => {
  const up = await echoServer(t)
  const gw = await gateway(t, up.url, '', { admin: true })
  const { ws } = await connect(t, `${gw.url.replace('http', 'ws')}/live`)
  await roundTrip(ws, 'hello')
  ws.close()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request')), 'logged once closed')
  const admin = gw.adminUrl as string
  t.equal(await metricValue(admin, 'portcullis_http_requests_total{route="live",method="GET",status="101"}'), 1, 'counted')
  t.equal(await metricValue(admin, 'portcullis_http_request_duration_seconds_count{route="live"}'), 0, 'no duration')
  t.equal(await metricValue(admin, 'portcullis_gateway_overhead_seconds_count{route="live"}'), 0, 'no overhead')
})

t.test('websocket: false refuses the upgrade with 400 JSON', async t => {
  const up = await echoServer(t)
  const gw = await gateway(t, up.url)
  const r = await refused(`${gw.url.replace('http', 'ws')}/plain`)
  t.equal(r.status, 400)
  t.match(JSON.parse(r.body), { error: 'websocket_disabled', requestId: String })
  t.notOk(r.opened, 'no WebSocket opened')
  t.equal(up.upgrades.length, 0, 'the upstream saw nothing')
})

t.test('an upgrade no route matches gets 404 JSON', async t => {
  const up = await echoServer(t)
  const gw = await gateway(t, up.url)
  const r = await refused(`${gw.url.replace('http', 'ws')}/nowhere`)
  t.equal(r.status, 404)
  t.match(JSON.parse(r.body), { error: 'no_route', requestId: String })
  t.notOk(r.opened, 'no WebSocket opened')
})

t.test("an upstream refusing the upgrade: its answer reaches the client", async t => {
  const up = await echoServer(t)
  const gw = await gateway(t, up.url)
  const r = await refused(`${gw.url.replace('http', 'ws')}/live?refuse`)
  t.equal(r.status, 401, "the upstream's status, not a gateway error")
  t.equal(r.body, 'Unauthorized', "the upstream's body")
  t.notOk(r.opened, 'no WebSocket opened')
})

t.test("an upgrade passes the route's request plugins like any request: no key, no tunnel; past the limit, 429", async t => {
  const up = await echoServer(t)
  const gw = await startGateway(`
consumers:
  - { id: bot, credentials: { key-auth: { keys: [ "k-0123456789abcdef" ] } } }
upstreams:
  ws: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: live
    match: { path: /live }
    upstream: ws
    plugins:
      key-auth: { query: api_key }
      rate-limit: { limits: [ { name: tunnels, requests: 1, window: 1m } ] }
      compress: {}
      cache: {}
`)
  t.teardown(() => gw.close())
  const url = `${gw.url.replace('http', 'ws')}/live`
  const anonymous = await refused(url)
  t.equal(anonymous.status, 401)
  t.match(JSON.parse(anonymous.body), { error: 'unauthorized' })
  t.equal(up.upgrades.length, 0, 'the upstream saw nothing')
  const { ws } = await connect(t, `${url}?api_key=k-0123456789abcdef`)
  t.same((await roundTrip(ws, 'hi')).data, Buffer.from('hi'), 'with the key the tunnel opens, untouched by compress and cache')
  const limited = await refused(`${url}?api_key=k-0123456789abcdef`)
  t.equal(limited.status, 429)
  t.equal(up.upgrades.length, 1, 'one upgrade reached the upstream')
})

t.test('closing the gateway closes open WebSockets with 1001, without waiting for the shutdown deadline', async t => {
  const up = await echoServer(t)
  const gw = await gateway(t, up.url, 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 20s')
  const { ws } = await connect(t, `${gw.url.replace('http', 'ws')}/live`)
  const wsClosed = once(ws, 'close')
  const started = performance.now()
  await gw.close()
  const took = performance.now() - started
  t.ok(took < 5_000, `close took ${Math.round(took)} ms with a 20 s deadline`)
  const [code] = await wsClosed
  t.equal(code, 1001, 'the client was told the gateway is going away')
  t.equal(ws.readyState, WebSocket.CLOSED, 'the client saw its WebSocket closed')
})
