import t from 'tap'
import { startRawUpstream } from '../helpers/raw-http.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'

// Node's HTTP/1 parser refuses methods it does not know (400, logged); HTTP/2 takes any token, and
// Fastify's router knows none of those: they must still be routed, counted and logged like the rest.
t.test('HTTP/2 (h2c and TLS) methods Node does not know (FOO, lowercase get) are routed, logged and counted as OTHER', async t => {
  // Not a Node server: it would refuse FOO itself.
  const up = await startRawUpstream(['HTTP/1.1 200 OK', 'Content-Length: 2', '', 'ok'])
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: reads, match: { path: /reads/*, methods: [GET] }, upstream: up }
  - { name: any, match: { path: /any/* }, upstream: up }
`, { admin: true })
  const adminUrl = gw.adminUrl as string
  for (const h2c of [true, false]) {
    const session = await connect({ h2c })
    const via = h2c ? 'h2c' : 'h2'
    const proxied = await h2Request(session, { ':method': 'FOO', ':path': `/any/${via}` })
    t.equal(proxied.status, 200, `${via}: a route without methods takes FOO`)
    t.match(proxied.headers['x-request-id'], /\S/, via)
    for (const method of ['FOO', 'get']) {
      const refused = await h2Request(session, { ':method': method, ':path': `/reads/${via}` })
      t.equal(refused.status, 404, `${via} ${method}: a GET route does not take it`)
      t.match(JSON.parse(refused.body.toString()), { error: 'no_route' }, `${via} ${method}`)
      t.match(refused.headers['x-request-id'], /\S/, `${via} ${method}`)
    }
  }
  t.equal(gw.logs.filter(l => l.msg === 'request' && l.method === 'FOO' && l.protocol === 'HTTP/2' && l.status === 200).length, 2, 'access log: proxied')
  t.equal(gw.logs.filter(l => l.msg === 'request rejected' && (l.method === 'FOO' || l.method === 'get') && l.status === 404).length, 4, 'access log: refused')
  t.equal(await metricValue(adminUrl, 'portcullis_http_requests_total{route="any",method="OTHER",status="200"}'), 2)
  t.equal(await metricValue(adminUrl, 'portcullis_http_requests_total{route="(unmatched)",method="OTHER",status="404"}'), 4)
})
