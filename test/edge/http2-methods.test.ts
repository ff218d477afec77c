import t from 'tap'
import { startRawUpstream } from '../helpers/raw-http.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'

// Node's HTTP/1 parser refuses methods it does not know (400, logged); HTTP/2 takes any token, and
// Fastify's router knows none of those: they must get the same answer, and be counted and logged.
t.test('HTTP/2 (h2c and TLS) methods Node does not know (FOO, lowercase get) are refused as over HTTP/1.1: 400, logged and counted as OTHER', async t => {
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
    for (const [method, path] of [['FOO', '/any/'], ['FOO', '/reads/'], ['get', '/reads/']]) {
      const refused = await h2Request(session, { ':method': method, ':path': `${path}${via}` })
      t.equal(refused.status, 400, `${via} ${method} ${path}`)
      t.match(JSON.parse(refused.body.toString()), { error: 'bad_request' }, `${via} ${method} ${path}: the gateway's JSON, not Fastify's`)
      t.match(refused.headers['x-request-id'], /\S/, `${via} ${method} ${path}`)
    }
  }
  t.equal(gw.logs.filter(l => l.msg === 'request rejected' && (l.method === 'FOO' || l.method === 'get') && l.status === 400).length, 6, 'access log: each refused')
  t.equal(await metricValue(adminUrl, 'portcullis_http_requests_total{route="(unmatched)",method="OTHER",status="400"}'), 6)
})
