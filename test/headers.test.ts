import t, { type Test } from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { echo, startUpstream, type TestUpstream } from './helpers/upstream.ts'
import type { TestGateway } from './helpers/gateway.ts'
import { catchAllGateway } from './helpers/catch-all.ts'
import { waitForLog } from './helpers/logs.ts'
import { headerValues, rawRequest, startRawUpstream } from './helpers/raw-http.ts'
import { h2Connect, h2Request, echoed as h2Echoed } from './helpers/http2.ts'

type Echoed = { url: string, headers: Record<string, string | undefined>, body: string }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

async function echoUpstream (t: Test): Promise<TestUpstream> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  return up
}

const trusting = (trustProxy: string) => ({ server: `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  trustProxy: ${trustProxy}` })

const port = (gw: TestGateway) => Number(new URL(gw.url).port)

async function echoed (url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  return { res, seen: await res.body.json() as Echoed }
}

t.test('hop-by-hop request headers are not forwarded', async t => {
  const gw = await catchAllGateway(t, echo)
  const body = 'hello'
  const res = await rawRequest(port(gw), [
    'POST /hop HTTP/1.1',
    'Host: gateway.test',
    'Connection: close, X-Client-Secret',
    'Connection: X-Client-Other',
    'X-Client-Secret: s3cret',
    'X-Client-Other: 1',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Trailer: X-Checksum',
    'Upgrade: h2c',
    'Proxy-Authorization: Basic Zm9vOmJhcg==',
    'Proxy-Connection: keep-alive',
    'Proxy: http://evil.example:3128',
    'Proxy_Authorization: Basic Zm9vOmJhcg==',
    'Proxy-Status: forged',
    'X-Kept: yes',
    'Prefer: return=minimal',
    'Transfer-Encoding: chunked'
  ], `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`)
  t.equal(res.status, 200)
  const seen = JSON.parse(res.body) as Echoed
  // Proxy: "httpoxy", a CGI/WSGI/PHP backend would read it as HTTP_PROXY.
  for (const name of ['x-client-secret', 'x-client-other', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'proxy-connection', 'proxy', 'proxy_authorization', 'proxy-status']) {
    t.equal(seen.headers[name], undefined, `${name} not forwarded`)
  }
  t.equal(seen.headers.connection, 'keep-alive', "the client's Connection header is not forwarded: the gateway's own pooled connection's is")
  t.equal(seen.headers['x-kept'], 'yes', 'end-to-end header forwarded')
  t.equal(seen.headers.prefer, 'return=minimal', 'a p... header that is not proxy-*: forwarded')
  t.equal(seen.body, body, 'chunked body re-framed and delivered intact')
})

t.test('hop-by-hop response headers are not returned', async t => {
  const up = await startRawUpstream([
    'HTTP/1.1 200 OK',
    'Content-Length: 2',
    'Connection: close, X-Up-Secret',
    'Connection: X-Up-Other',
    'X-Up-Secret: s3cret',
    'X-Up-Other: 1',
    'Keep-Alive: timeout=5, max=7',
    'Trailer: X-Checksum',
    'Upgrade: h2c',
    'Proxy-Authenticate: Basic realm="up"',
    'Proxy-Foo: bar',
    'Proxy-Status: origin; error=http_protocol_error',
    'X-Up-Kept: yes',
    'Set-Cookie: a=1',
    'Set-Cookie: b=2',
    'Set-Cookie: c=3',
    '',
    'ok'
  ])
  t.teardown(() => up.close())
  const gw = await catchAllGateway(t, up.url)
  const res = await rawRequest(port(gw), ['GET / HTTP/1.1', 'Host: gateway.test', 'Connection: close'])
  t.equal(res.status, 200)
  t.equal(res.body, 'ok')
  for (const name of ['x-up-secret', 'x-up-other', 'keep-alive', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-foo']) {
    t.same(headerValues(res, name), [], `${name} not returned`)
  }
  t.same(headerValues(res, 'connection'), ['close'], "the gateway's own Connection header only")
  t.same(headerValues(res, 'x-up-kept'), ['yes'], 'end-to-end header returned')
  t.same(headerValues(res, 'proxy-status'), ['origin; error=http_protocol_error'], 'Proxy-Status (RFC 9209) is meant for the client: returned')
  t.same(headerValues(res, 'set-cookie'), ['a=1', 'b=2', 'c=3'], 'a header sent three times: three fields, in order')
})

t.test('an upstream chunked response is re-framed once', async t => {
  const up = await startRawUpstream([
    'HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Connection: close', '', '2', 'ok', '0', '', ''
  ])
  t.teardown(() => up.close())
  const gw = await catchAllGateway(t, up.url)
  const res = await rawRequest(port(gw), ['GET / HTTP/1.1', 'Host: gateway.test', 'Connection: close'])
  t.same(headerValues(res, 'transfer-encoding'), ['chunked'], 'one Transfer-Encoding, the gateway\'s own')
  t.equal(res.body, '2\r\nok\r\n0\r\n\r\n')
})

t.test('X-Forwarded-* from an untrusted client are replaced', async t => {
  const gw = await catchAllGateway(t, echo)
  const { seen } = await echoed(`${gw.url}/`, {
    'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.test', host: 'gateway.test'
  })
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers['x-forwarded-host'], 'gateway.test', 'the Host the client used')
  t.match(await waitForLog(gw.logs, { msg: 'request' }), { clientIp: '127.0.0.1' })
})

t.test('an HTTP/1.0 request without Host: no X-Forwarded-Host, not even the client\'s', async t => {
  const gw = await catchAllGateway(t, echo)
  const res = await rawRequest(port(gw), ['GET / HTTP/1.0', 'X-Forwarded-Host: evil.test'])
  t.equal(res.status, 200)
  t.equal((JSON.parse(res.body) as Echoed).headers['x-forwarded-host'], undefined)
})

for (const [label, trust] of [['true', 'true'], ['a CIDR list containing the peer', '[ "10.0.0.0/8", "127.0.0.0/8" ]']] as const) {
  t.test(`X-Forwarded-* from a trusted proxy (trustProxy: ${label}) are extended`, async t => {
    const gw = await catchAllGateway(t, echo, trusting(trust))
    const { seen } = await echoed(`${gw.url}/`, {
      'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.test', host: 'gateway.test'
    })
    t.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'peer appended')
    t.equal(seen.headers['x-forwarded-proto'], 'https', 'kept')
    t.equal(seen.headers['x-forwarded-host'], 'public.test', 'kept')
    t.match(await waitForLog(gw.logs, { msg: 'request' }), { clientIp: '203.0.113.9' }, 'client address taken from the trusted chain')
  })
}

t.test('a trusted proxy that sent no X-Forwarded-For: the peer starts the list, its other X-Forwarded-* are kept', async t => {
  const gw = await catchAllGateway(t, echo, trusting('true'))
  const first = await echoed(`${gw.url}/`, { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.test', host: 'gateway.test' })
  t.same([first.seen.headers['x-forwarded-for'], first.seen.headers['x-forwarded-proto'], first.seen.headers['x-forwarded-host']],
    ['127.0.0.1', 'https', 'public.test'])
  const empty = await echoed(`${gw.url}/`, { 'x-forwarded-for': '', host: 'gateway.test' })
  t.same([empty.seen.headers['x-forwarded-for'], empty.seen.headers['x-forwarded-proto'], empty.seen.headers['x-forwarded-host']],
    ['127.0.0.1', 'http', 'gateway.test'], 'an empty X-Forwarded-For is no list')
})

t.test('with a CIDR list, the client address is the first untrusted hop from the right', async t => {
  const gw = await catchAllGateway(t, echo, trusting('[ "127.0.0.0/8" ]'))
  const { seen } = await echoed(`${gw.url}/`, { 'x-forwarded-for': '198.51.100.7, 10.1.1.1' })
  t.equal(seen.headers['x-forwarded-for'], '198.51.100.7, 10.1.1.1, 127.0.0.1', 'peer appended')
  t.match(await waitForLog(gw.logs, { msg: 'request' }), { clientIp: '10.1.1.1' }, 'a spoofed left-most entry is not believed')
})

t.test('X-Forwarded-* from a peer outside the trustProxy CIDR list are replaced', async t => {
  const gw = await catchAllGateway(t, echo, trusting('[ "10.0.0.0/8" ]'))
  const { seen } = await echoed(`${gw.url}/`, { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' })
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
})

// What a client could claim to a backend that believes its proxies: an address, a scheme, a port, a path prefix, a certificate.
const SPOOFED = {
  forwarded: 'for=6.6.6.6;proto=https;host=evil.test',
  'x-real-ip': '6.6.6.6',
  'true-client-ip': '6.6.6.6',
  'x-client-ip': '6.6.6.6',
  'client-ip': '6.6.6.6',
  'cf-connecting-ip': '6.6.6.6',
  'fastly-client-ip': '6.6.6.6',
  'x-cluster-client-ip': '6.6.6.6',
  'x-forwarded-port': '443',
  'x-forwarded-prefix': '/admin',
  'x-forwarded-ssl': 'on',
  'x-forwarded-scheme': 'https',
  'x-forwarded-client-cert': 'Hash=1;Subject="CN=admin"',
  'x-forwarded': 'for=6.6.6.6',
  'forwarded-for': '6.6.6.6',
  'x-originating-ip': '6.6.6.6',
  'x-envoy-external-address': '6.6.6.6'
}

for (const [label, options] of [['trustProxy off', {}], ['a peer outside the trustProxy CIDR list', trusting('[ "10.0.0.0/8" ]')]] as const) {
  t.test(`other forwarding headers from an untrusted client (${label}) are dropped; X-Real-IP and X-Forwarded-Port are the gateway's`, async t => {
    const gw = await catchAllGateway(t, echo, options)
    const { seen } = await echoed(`${gw.url}/`, { ...SPOOFED, host: 'gateway.test' })
    const { 'x-real-ip': realIp, 'x-forwarded-port': fwdPort, ...spoofed } = SPOOFED
    t.same(Object.keys(spoofed).filter(name => seen.headers[name] !== undefined), [], 'none reaches the upstream')
    t.not(realIp, '127.0.0.1')
    t.equal(seen.headers['x-real-ip'], '127.0.0.1', 'X-Real-IP: the peer')
    t.not(fwdPort, '80')
    t.equal(seen.headers['x-forwarded-port'], '80', 'X-Forwarded-Port: the Host\'s, by default that of the scheme')
    const withPort = await echoed(`${gw.url}/`, { 'x-forwarded-port': '443', host: 'gateway.test:8080' })
    t.equal(withPort.seen.headers['x-forwarded-port'], '8080', 'the port the client named in Host')
    const res = await rawRequest(port(gw), ['GET / HTTP/1.0', 'X-Forwarded-Port: 443'])
    t.equal((JSON.parse(res.body) as Echoed).headers['x-forwarded-port'], undefined, 'none without a Host')
  })
}

t.test('forwarding headers from a trusted proxy are kept as sent; X-Real-IP is the client address resolved', async t => {
  const gw = await catchAllGateway(t, echo, trusting('true'))
  const { seen } = await echoed(`${gw.url}/`, { ...SPOOFED, 'x-forwarded-for': '203.0.113.9', host: 'gateway.test' })
  for (const [name, value] of Object.entries(SPOOFED)) if (name !== 'x-real-ip') t.equal(seen.headers[name], value, `${name} kept`)
  t.equal(seen.headers['x-real-ip'], '203.0.113.9', 'X-Real-IP: the address the gateway resolved (and logs)')
  const noPort = await echoed(`${gw.url}/`, { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.test', host: 'gateway.test' })
  t.equal(noPort.seen.headers['x-forwarded-port'], '443', 'no X-Forwarded-Port sent: the one of the proxy\'s X-Forwarded-Host and -Proto')
  t.equal(noPort.seen.headers['x-real-ip'], '127.0.0.1', 'no X-Forwarded-For: the peer')
})

// The `_` spellings CGI, WSGI and Rack servers read as the header the gateway sets (HTTP_X_FORWARDED_FOR), mixed case.
const UNDERSCORED = {
  X_Forwarded_For: '6.6.6.6',
  'X-Real_IP': '6.6.6.6',
  x_real_ip: '6.6.6.6',
  X_FORWARDED_PROTO: 'https',
  'x_forwarded-host': 'evil.test',
  'X-Forwarded_Port': '443',
  X_Forwarded_Client_Cert: 'Hash=1;Subject="CN=admin"',
  cf_connecting_ip: '6.6.6.6',
  X_Envoy_External_Address: '6.6.6.6',
  // Framing is the gateway's for each hop: a client's claim in another spelling is no more passed on.
  Transfer_Encoding: 'chunked',
  Content_Length: '99',
  Keep_Alive: 'timeout=5'
}
const h2cServer = { server: 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }' }

/** The underscore spellings of UNDERSCORED that reached the upstream. */
const underscoredSeen = (headers: Record<string, unknown>) => Object.keys(headers).filter(name => name.includes('_'))

for (const [label, options] of [['trustProxy off', h2cServer], ['a peer outside the trustProxy CIDR list', trusting('[ "10.0.0.0/8" ]')]] as const) {
  t.test(`\`_\` spellings of forwarding headers from an untrusted client (${label}) are dropped`, async t => {
    const gw = await catchAllGateway(t, echo, options)
    const { seen } = await echoed(`${gw.url}/`, { ...UNDERSCORED, host: 'gateway.test' })
    t.same(underscoredSeen(seen.headers), [], 'none reaches the upstream over HTTP/1.1')
    t.same([seen.headers['x-forwarded-for'], seen.headers['x-real-ip'], seen.headers['x-forwarded-proto']], ['127.0.0.1', '127.0.0.1', 'http'], 'the gateway\'s own')
    if (gw.h2cUrl === undefined) return
    const session = await h2Connect(gw.h2cUrl)
    t.teardown(() => session.destroy())
    const h2 = await h2Request(session, { ':path': '/', ...Object.fromEntries(Object.entries(UNDERSCORED).map(([name, value]) => [name.toLowerCase(), value])) })
    t.same(underscoredSeen(h2Echoed(h2).headers), [], 'none reaches the upstream over h2c')
  })
}

t.test('`_` spellings of forwarding headers from a trusted proxy are dropped too; the dashed ones are kept', async t => {
  const gw = await catchAllGateway(t, echo, trusting('true'))
  const { seen } = await echoed(`${gw.url}/`, { ...UNDERSCORED, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-prefix': '/api', 'x_other': 'kept', host: 'gateway.test' })
  t.same(underscoredSeen(seen.headers), ['x_other'], 'only the header that names no forwarding header reaches the upstream')
  t.same([seen.headers['x-forwarded-for'], seen.headers['x-real-ip'], seen.headers['x-forwarded-prefix']], ['203.0.113.9, 127.0.0.1', '203.0.113.9', '/api'])
})

t.test('Host sent upstream', async t => {
  const up = await echoUpstream(t)
  const target = await catchAllGateway(t, up.url)
  t.equal((await echoed(`${target.url}/`, { host: 'gateway.test' })).seen.headers.host, `127.0.0.1:${up.port}`, "the target's host by default")
  const preserve = await catchAllGateway(t, up.url, { route: '    preserveHost: true' })
  t.equal((await echoed(`${preserve.url}/`, { host: 'gateway.test' })).seen.headers.host, 'gateway.test', 'preserveHost: the client\'s')
  const fixed = await catchAllGateway(t, up.url, { route: '    hostHeader: internal.svc' })
  t.equal((await echoed(`${fixed.url}/`, { host: 'gateway.test' })).seen.headers.host, 'internal.svc', 'hostHeader: as configured')
})

t.test('x-request-id', async t => {
  const gw = await catchAllGateway(t, echo)
  const generated = await echoed(`${gw.url}/`)
  t.match(generated.res.headers['x-request-id'], UUID, 'generated when absent')
  t.equal(generated.seen.headers['x-request-id'], generated.res.headers['x-request-id'], 'the same id upstream and in the response')

  const passed = await echoed(`${gw.url}/`, { 'x-request-id': 'trace-42.a:b_c' })
  t.equal(passed.seen.headers['x-request-id'], 'trace-42.a:b_c', 'a safe id is passed through')
  t.equal(passed.res.headers['x-request-id'], 'trace-42.a:b_c', 'and echoed')

  for (const unsafe of ['has space', 'x'.repeat(200), 'semi;colon']) {
    const replaced = await echoed(`${gw.url}/`, { 'x-request-id': unsafe })
    t.match(replaced.seen.headers['x-request-id'], UUID, `unsafe id ${JSON.stringify(unsafe.slice(0, 12))} replaced`)
    t.equal(replaced.res.headers['x-request-id'], replaced.seen.headers['x-request-id'], 'and the new id echoed')
  }
})

t.test('request-headers and response-headers plugins', async t => {
  const upstream = (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('server', 'upstream/1.0')
    res.setHeader('x-internal', 'secret')
    res.end(JSON.stringify({ headers: req.headers }))
  }
  const gw = await catchAllGateway(t, upstream, {
    route: `    plugins:
      request-headers:
        set: { X-Added: "1" }
        remove: [ Cookie ]
        rename: { X-Old: X-New }
      response-headers:
        set: { Cache-Control: no-store }
        remove: [ Server ]
        rename: { X-Internal: X-Public }`
  })
  const res = await request(`${gw.url}/`, { headers: { cookie: 'a=b', 'x-old': 'v', 'x-added': 'client' } })
  const seen = (await res.body.json() as { headers: Record<string, string | undefined> }).headers
  t.equal(seen['x-added'], '1', 'request header set (replacing the client\'s)')
  t.equal(seen.cookie, undefined, 'request header removed')
  t.same([seen['x-old'], seen['x-new']], [undefined, 'v'], 'request header renamed')
  t.equal(res.headers['cache-control'], 'no-store', 'response header set')
  t.equal(res.headers.server, undefined, 'response header removed')
  t.same([res.headers['x-internal'], res.headers['x-public']], [undefined, 'secret'], 'response header renamed')
})

t.test('more than 2,000 request headers are forwarded, none silently dropped; too many bytes of them get 431', async t => {
  const gw = await catchAllGateway(t, echo)
  const many = Array.from({ length: 2_100 }, (_, i) => `x-n: ${i % 10}`)
  const res = await rawRequest(port(gw), ['GET /many HTTP/1.1', 'Host: gateway.test', 'Connection: close', ...many])
  t.equal(res.status, 200)
  const seen = (JSON.parse(res.body) as { headers: Record<string, string> }).headers['x-n']
  t.equal(seen?.split(', ').length, 2_100, 'all 2,100 reached the upstream')
  const huge = Array.from({ length: 3_000 }, (_, i) => `x-header-${i}: v`)
  const refused = await rawRequest(port(gw), ['GET /huge HTTP/1.1', 'Host: gateway.test', 'Connection: close', ...huge])
  t.equal(refused.status, 431, 'past the size limit: 431, not a silent cut')
})
