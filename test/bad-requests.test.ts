import t from 'tap'
import { request } from 'undici'
import { catchAllGateway, catchAllYaml } from './helpers/catch-all.ts'
import { startGateway } from './helpers/gateway.ts'
import { metricValue } from './helpers/metric-value.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { startUpstream } from './helpers/upstream.ts'
import { until } from './helpers/wait.ts'

// Requests refused before any route could take them, by Node's parser or by Fastify's router:
// the same JSON error body and request id as every gateway error, and an access-log line.
t.test('malformed requests: our JSON errors with a request id, and a log line each', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await catchAllGateway(t, up.url)
  const port = Number(new URL(gw.url).port)
  const cases = [
    { name: 'request target without a leading slash', lines: ['GET users/7 HTTP/1.1', 'Host: x'], status: 400, error: 'bad_request' },
    { name: 'Content-Length and Transfer-Encoding both', lines: ['POST /x HTTP/1.1', 'Host: x', 'Content-Length: 3', 'Transfer-Encoding: chunked'], status: 400, error: 'bad_request' },
    { name: 'headers over the size limit', lines: ['GET /x HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(20_000)}`], status: 431, error: 'headers_too_large' },
    { name: 'a malformed escape', lines: ['GET /users/%zz HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path' },
    // Decoded for routing, such bytes are no text: refused, and the message says why.
    { name: 'an escape that is not UTF-8 (Latin-1 é)', lines: ['GET /caf%E9 HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path', message: /do not decode as UTF-8/ },
    { name: 'a lone continuation byte', lines: ['GET /a%80 HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path', message: /do not decode as UTF-8/ },
    // Upgrades do not pass through Fastify's router, which refuses the plain requests above: the gateway refuses them alike.
    ...['/caf%E9', '/a%80', '/%C0%AF'].map(path => ({
      name: `an upgrade to ${path}`,
      lines: [`GET ${path} HTTP/1.1`, 'Host: x', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='],
      status: 400,
      error: 'bad_path',
      message: /do not decode as UTF-8/
    }))
  ]
  for (const c of cases) {
    const res = await rawRequest(port, c.lines)
    t.equal(res.status, c.status, c.name)
    const id = headerValues(res, 'x-request-id')[0]
    t.match(JSON.parse(res.body), { error: c.error, message: c.message ?? String, requestId: id }, `${c.name}: our error body`)
    t.ok(gw.logs.some(l => l.msg === 'request rejected' && l.requestId === id && l.status === c.status), `${c.name}: logged`)
  }
})

// Every `request rejected` line is a request answered: counted under (unmatched), once; and its
// query, where an API key may be (key-auth's `query`), is never logged.
t.test('requests rejected before routing: counted once each, logged without their query', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(catchAllYaml(up.url), { admin: true })
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const cases = [
    { lines: ['GET /x HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(20_000)}`], status: 431 },
    { lines: ['GET /x HTTP/3.0', 'Host: x'], status: 400 },
    { lines: ['CONNECT /q/%zz?api_key=secret1 HTTP/1.1', 'Host: x'], status: 501, method: 'OTHER' },
    { lines: ['POST /x HTTP/1.1', 'Host: x', 'Content-Length: 3', 'Transfer-Encoding: chunked'], status: 400 },
    { lines: ['GET %zz HTTP/1.1', 'Host: x'], status: 400 },
    { lines: ['FOO /x HTTP/1.1', 'Host: x'], status: 400 },
    { lines: ['GET /q/%zz?api_key=secret1 HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, method: 'GET' },
    { lines: ['GET /q?api_key=secret1 HTTP/1.1', 'Host: x', 'Expect: foo', 'Connection: close'], status: 417, method: 'GET' },
    { lines: ['GET /q?api_key=secret1 HTTP/1.1', 'Host: bad/host', 'Connection: close'], status: 400, method: 'GET' }
  ]
  for (const c of cases) t.equal((await rawRequest(port, c.lines)).status, c.status, c.lines[0] as string)
  const admin = gw.adminUrl as string
  const text = await (await request(`${admin}/metrics`)).body.text()
  const counted = text.split('\n').filter(l => l.startsWith('portcullis_http_requests_total{route="(unmatched)"'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  t.equal(counted, cases.length, 'each counted, once')
  t.ok(await metricValue(admin, 'portcullis_http_requests_total{route="(unmatched)",method="OTHER",status="501"}') >= 1, 'CONNECT as OTHER')
  t.equal(await metricValue(admin, 'portcullis_http_requests_total{route="(unmatched)",method="GET",status="417"}'), 1)
  const rejected = gw.logs.filter(l => l.msg === 'request rejected')
  t.equal(rejected.length, cases.length, 'each logged')
  t.notOk(JSON.stringify(gw.logs).includes('secret1'), 'no query in the logs')
  t.ok(rejected.some(l => l.path === '/q/%zz' && l.status === 400), 'the path, up to its query')
})

t.test('behind a trusted proxy, a rejected request names the client as a routed one does (X-Forwarded-For)', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: [127.0.0.1]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: up }
`)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const cases = [
    { lines: ['GET /a HTTP/1.1'], status: 200 },
    { lines: ['GET /nowhere HTTP/1.1'], status: 404 },
    { lines: ['GET /a/%zz HTTP/1.1'], status: 400 },
    { lines: ['GET /caf%E9 HTTP/1.1'], status: 400 },
    { lines: ['TRACE /a HTTP/1.1'], status: 405 },
    { lines: ['CONNECT a.example:443 HTTP/1.1'], status: 501 },
    { lines: ['GET /a HTTP/1.1', 'Expect: foo'], status: 417 }
  ]
  for (const c of cases) {
    const res = await rawRequest(port, [...c.lines, 'Host: x', 'X-Forwarded-For: 203.0.113.9', 'Connection: close'])
    t.equal(res.status, c.status, c.lines.join(', '))
  }
  const lines = gw.logs.filter(l => l.msg === 'request' || l.msg === 'request rejected')
  t.equal(lines.length, cases.length, 'each logged')
  t.same(lines.filter(l => l.clientIp !== '203.0.113.9'), [], 'each with the address the proxy named')
})

t.test('a long path is logged cut at 2 KiB, with how much was left out, whether routed or rejected', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a/* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const routed = `/a/${'x'.repeat(8_000)}`
  const unrouted = `/b/${'y'.repeat(8_000)}`
  for (const [url, status] of [[routed, 200], [`${unrouted}?api_key=secret1`, 404]] as const) {
    const res = await request(`${gw.url}${url}`)
    t.equal(res.statusCode, status)
    await res.body.dump()
  }
  const cut = (path: string) => `${path.slice(0, 2048)}…(+${path.length - 2048} bytes)`
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request')))
  t.equal(gw.logs.find(l => l.msg === 'request')?.path, cut(routed), 'the access line')
  t.equal(gw.logs.find(l => l.msg === 'request rejected')?.path, cut(unrouted), 'the rejected line, its query left out first')
})
