import t from 'tap'
import { once } from 'node:events'
import { Agent, request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import type { AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'
import { startGateway } from '../helpers/gateway.ts'
import { echo, startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { echoed, h2Connect, h2Request, startH2Gateway } from '../helpers/http2.ts'


t.test('HTTP/2 over TLS: :authority becomes Host, no pseudo-headers upstream, normalized path, access log protocol', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url, { route: '    preserveHost: true' }))
  const session = await connect()
  t.equal(session.alpnProtocol, 'h2')
  const res = await h2Request(session, { ':method': 'GET', ':path': '/a/./b/../c?x=1', ':authority': 'api.example.com', 'x-custom': 'yes' })
  t.equal(res.status, 200)
  t.equal(res.headers.connection, undefined, 'no connection-specific header on an HTTP/2 response')
  t.match(res.headers['x-request-id'], /\S/)
  const seen = echoed(res)
  t.equal(seen.url, '/a/c?x=1', 'path normalized as over HTTP/1.1')
  t.equal(seen.headers.host, 'api.example.com', ':authority is the upstream Host')
  t.equal(seen.headers['x-forwarded-host'], 'api.example.com')
  t.equal(seen.headers['x-forwarded-proto'], 'https')
  t.equal(seen.headers['x-custom'], 'yes')
  t.same(Object.keys(seen.headers).filter(h => h.startsWith(':')), [], 'no pseudo-header reaches the upstream')

  const post = await h2Request(session, { ':method': 'POST', ':path': '/upload', 'content-type': 'text/plain' }, 'hello over h2')
  t.equal(echoed(post).body, 'hello over h2')
  t.equal(echoed(post).method, 'POST')

  const line = gw.logs.find(l => l.msg === 'request' && l.path === '/a/c')
  t.match(line, { protocol: 'HTTP/2', status: 200, method: 'GET' })
})

t.test('the same port speaks HTTP/1.1 (ALPN http/1.1), and undici with allowH2 speaks HTTP/2', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, ca } = await startH2Gateway(t, 'true', catchAllYaml(up.url, { route: '    preserveHost: true' }))
  const h1 = new Agent({ connect: { ca: ca.cert } })
  const h2 = new Agent({ allowH2: true, connect: { ca: ca.cert } })
  t.teardown(() => Promise.all([h1.close(), h2.close()]))
  for (const [agent, protocol] of [[h1, 'HTTP/1.1'], [h2, 'HTTP/2']] as const) {
    const res = await request(`${gw.url}/via/${protocol}`, { dispatcher: agent, method: 'PUT', body: 'payload', headers: { 'content-type': 'text/plain' } })
    const seen = await res.body.json() as { url: string, body: string, headers: Record<string, string> }
    t.equal(res.statusCode, 200, protocol)
    t.equal(seen.body, 'payload', `${protocol}: body streamed`)
    t.match(seen.headers.host, /^(localhost|127\.0\.0\.1):\d+$/, `${protocol}: the client's host`)
    t.match(gw.logs.find(l => l.msg === 'request' && l.path === `/via/${protocol}`), { protocol })
  }
})

/** An HTTP/1.0 request over TLS offering `protocols` by ALPN: the status line and the protocol chosen, or the handshake's error. */
async function http10OverAlpn (url: string, ca: string, protocols: string[]): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(url).port), ca, ALPNProtocols: protocols })
  return await new Promise(resolve => {
    let text = ''
    socket.once('secureConnect', () => socket.write('GET /alpn HTTP/1.0\r\nHost: localhost\r\n\r\n'))
    socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    socket.once('error', (err: Error & { code?: string }) => resolve(err.code as string))
    socket.once('close', () => resolve(`${text.slice(0, text.indexOf('\r\n'))} (${String(socket.alpnProtocol)})`))
  })
}

t.test('ALPN: http/1.0 alone gets HTTP/1 (HTTP/2 on or off); h2 alone without HTTP/2, or an unknown protocol, is refused', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const on = await startH2Gateway(t, 'true', catchAllYaml(up.url))
  const off = await startH2Gateway(t, 'false', catchAllYaml(up.url))
  for (const { gw, ca } of [on, off]) {
    t.equal(await http10OverAlpn(gw.url, ca.cert, ['http/1.0']), 'HTTP/1.1 200 OK (http/1.0)', 'curl --http1.0')
    t.equal(await http10OverAlpn(gw.url, ca.cert, ['http/1.0', 'http/1.1']), 'HTTP/1.1 200 OK (http/1.1)')
    t.equal(await http10OverAlpn(gw.url, ca.cert, ['foo']), 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL', 'an unknown protocol')
  }
  t.equal(await http10OverAlpn(off.gw.url, off.ca.cert, ['h2']), 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL', 'h2 without HTTP/2')
  t.equal(await http10OverAlpn(off.gw.url, off.ca.cert, ['h2', 'http/1.1']), 'HTTP/1.1 200 OK (http/1.1)')
})

t.test('gateway answers over HTTP/2: no route, bad path, :authority and Host that differ, CONNECT', async t => {
  let reached = 0
  const up = await startUpstream((req, res) => { reached++; echo(req, res) })
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, 'true', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: api
    match: { path: /api/* }
    upstream: up
`)
  const session = await connect()
  const cases: Array<[string, Record<string, string>, number, string]> = [
    ['no route', { ':path': '/nowhere' }, 404, 'no_route'],
    ['encoded slash', { ':path': '/api/a%2Fb' }, 400, 'bad_path'],
    ['Host differs from :authority', { ':path': '/api/x', ':authority': 'a.example', host: 'b.example' }, 400, 'bad_request'],
    ['CONNECT', { ':method': 'CONNECT', ':authority': 'elsewhere.example:443' }, 501, 'not_implemented']
  ]
  for (const [name, headers, status, error] of cases) {
    const res = await h2Request(session, headers)
    t.equal(res.status, status, name)
    t.equal(res.headers['content-type'], 'application/json; charset=utf-8', name)
    t.match(JSON.parse(res.body.toString()), { error }, name)
  }
  t.equal(reached, 0, 'nothing reached the upstream')
  t.ok(gw.logs.some(l => l.msg === 'request rejected' && l.protocol === 'HTTP/2' && l.status === 404))
})

t.test('Host beside :authority: the same authority written otherwise (case, default port) is taken, another port is not', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url, { route: '    preserveHost: true' }))
  const session = await connect()
  const cases: Array<[string, string, number]> = [
    ['localhost', 'LOCALHOST', 200],
    ['localhost', 'localhost:443', 200],
    ['localhost:443', 'LocalHost', 200],
    ['[::1]', '[::1]:443', 200],
    ['localhost', 'localhost:8443', 400],
    ['localhost:80', 'localhost', 400],
    ['a.example', 'b.example', 400]
  ]
  for (const [authority, host, status] of cases) {
    const res = await h2Request(session, { ':path': '/x', ':authority': authority, host })
    t.equal(res.status, status, `${authority} and ${host}`)
    if (status === 200) t.equal(echoed(res).headers.host, authority, ':authority is the Host sent on')
  }
})

t.test('h2c: cleartext HTTP/2 with prior knowledge on a port of its own', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
${catchAllYaml(up.url, { route: '    preserveHost: true' })}`)
  t.teardown(() => gw.close())
  t.match(gw.h2cUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.not(gw.h2cUrl, gw.url)
  const session = await h2Connect(gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  const res = await h2Request(session, { ':path': '/h2c', ':authority': 'internal.example' })
  t.equal(res.status, 200)
  t.equal(echoed(res).headers.host, 'internal.example')
  t.equal(echoed(res).headers['x-forwarded-proto'], 'http')
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/h2c'), { protocol: 'HTTP/2' })
  // The main plain listener still speaks HTTP/1.1.
  const h1 = await request(`${gw.url}/h1`)
  t.equal(h1.statusCode, 200)
  await h1.body.dump()
})

t.test('WebSockets still work over HTTP/1.1 on the HTTP/2 listener', async t => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  wss.on('connection', ws => ws.on('message', (data, binary) => ws.send(data, { binary })))
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  const { gw, ca } = await startH2Gateway(t, 'true', catchAllYaml(`http://127.0.0.1:${(wss.address() as AddressInfo).port}`))
  const ws = new WebSocket(`${gw.url.replace('https', 'wss')}/live`, { ca: ca.cert })
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  const reply = once(ws, 'message')
  ws.send('ping over h1')
  t.equal(String((await reply)[0]), 'ping over h1')
})

t.test('config: HTTP/2 on the main listener needs TLS; a bad value is an error at its key', async t => {
  const cases: Array<[string, RegExp]> = [
    ['http2: true', /^gw\.yaml:3:\d+ server\.http2: HTTP\/2 on server\.listen needs server\.tls/],
    ['http2: { maxConcurrentStreams: 10 }', /^gw\.yaml:3:\d+ server\.http2: HTTP\/2 on server\.listen needs server\.tls/],
    ['http2: yes', /^gw\.yaml:3:\d+ server\.http2: must be true, false, or an object of HTTP\/2 settings/],
    ['http2: { h2c: { listen: { port: 0 } }, maxConcurentStreams: 5 }', /^gw\.yaml:3:\d+ server\.http2\.maxConcurentStreams: unknown key "maxConcurentStreams" \(did you mean "maxConcurrentStreams"\?\)/],
    ['http2: { h2c: { listen: { port: 0 } }, rapidReset: { burst: 0 } }', /^gw\.yaml:3:\d+ server\.http2\.rapidReset\.burst: /]
  ]
  for (const [http2, message] of cases) {
    const err = await parseConfig(`server:\n  listen: { port: 0 }\n  ${http2}\n${catchAllYaml('http://127.0.0.1:1')}`, 'gw.yaml', {}).then(() => undefined, (e: unknown) => e)
    t.type(err, ConfigError, http2)
    t.match((err as ConfigError).issues.map(formatIssue), [message], http2)
  }
})

t.test('limits are advertised in SETTINGS: max concurrent streams and header list size', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ maxConcurrentStreams: 7, maxHeaderListSize: 4096 }', catchAllYaml(up.url, { route: '    preserveHost: true' }))
  const session = await connect()
  if (session.remoteSettings.maxConcurrentStreams !== 7) await once(session, 'remoteSettings')
  t.equal(session.remoteSettings.maxConcurrentStreams, 7)
  t.equal(session.remoteSettings.maxHeaderListSize, 4096)
})
