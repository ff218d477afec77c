import t from 'tap'
import { catchAllGateway } from '../helpers/catch-all.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'
import { headerValues, rawRequest } from '../helpers/raw-http.ts'
import { echo, startUpstream } from '../helpers/upstream.ts'

// RFC 9110 15.5.6: a 405 MUST carry Allow. A route without match.methods forwards every method but TRACE.
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS'

t.test('the 405 for TRACE says in Allow which methods the route takes: HTTP/1.1, an upgrade request', async t => {
  const gw = await catchAllGateway(t, echo)
  const port = Number(new URL(gw.url).port)
  for (const [name, extra] of [['TRACE', ['Connection: close']], ['TRACE with Upgrade', ['Upgrade: websocket', 'Connection: Upgrade']]] as const) {
    const res = await rawRequest(port, ['TRACE /a HTTP/1.1', 'Host: a', ...extra])
    t.equal(res.status, 405, name)
    t.same(headerValues(res, 'allow'), [ALLOW], name)
  }
  const ok = await rawRequest(port, ['GET /a HTTP/1.1', 'Host: a', 'Connection: close'])
  t.same([ok.status, headerValues(ok, 'allow')], [200, []], 'no Allow on other answers')
})

t.test('the 405 for TRACE says in Allow which methods the route takes: HTTP/2 (TLS and h2c)', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: any, match: { path: /* }, upstream: up }
`)
  for (const h2c of [false, true]) {
    const res = await h2Request(await connect({ h2c }), { ':method': 'TRACE', ':path': '/a' })
    t.equal(res.status, 405, h2c ? 'h2c' : 'h2')
    t.equal(res.headers.allow, ALLOW, h2c ? 'h2c' : 'h2')
  }
})
