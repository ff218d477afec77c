import t from 'tap'
import { METHODS } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { metricValue } from '../helpers/metric-value.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'

// HTTP/1.1's parser refuses a method it does not know (400 bad_request: test/bad-requests.test.ts);
// HTTP/2 carries any token.
// Routed, `delete` would miss a route that names DELETE, match one without methods, and reach an
// upstream that upper-cases it (Werkzeug, cheroot) as the DELETE the first route guards.
t.test('HTTP/2: a method HTTP/1.1 refuses (lower-case, mixed-case, unknown) gets the same 400 before routing, logged and counted', async t => {
  // Not a Node server, whose own parser would refuse what the gateway let through: any request line is taken.
  const seen: string[] = []
  const up = createServer(socket => {
    socket.once('data', (c: Buffer) => {
      seen.push(c.toString('latin1').split(' ')[0] as string)
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => up.listen(0, '127.0.0.1', resolve))
  t.teardown(() => up.close())
  const upUrl = `http://127.0.0.1:${(up.address() as AddressInfo).port}`
  const { gw, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${upUrl}" } ] }
consumers:
  - { id: admin, credentials: { key-auth: { keys: [ "k-admin-0123456789abcdef" ] } } }
routes:
  - { name: writes, match: { path: /api/*, methods: [POST, PUT, DELETE] }, upstream: up, plugins: { key-auth: {} } }
  - { name: reads, match: { path: /api/* }, upstream: up }
`, { admin: true })
  const session = await connect({ h2c: true })
  for (const method of ['delete', 'Delete', 'FOO', 'get']) {
    const res = await h2Request(session, { ':method': method, ':path': '/api/items/1' })
    t.equal(res.status, 400, method)
    t.match(JSON.parse(res.body.toString()), { error: 'bad_request' }, method)
    t.match(res.headers['x-request-id'], /\S/, method)
  }
  t.same(seen, [], 'none reached the upstream')
  seen.length = 0
  t.equal((await h2Request(session, { ':method': 'DELETE', ':path': '/api/items/1' })).status, 401, 'DELETE: the route that names it, key-auth')
  t.equal((await h2Request(session, { ':method': 'DELETE', ':path': '/api/items/1', 'x-api-key': 'k-admin-0123456789abcdef' })).status, 200)
  // Every method Node's HTTP/1.1 parser takes is taken (CONNECT is the gateway's 501 either way).
  for (const method of METHODS.filter(m => m !== 'CONNECT')) {
    const res = await h2Request(session, { ':method': method, ':path': '/api/m' })
    t.not(res.status, 400, method)
  }
  t.ok(seen.includes('M-SEARCH') && seen.includes('PROPFIND'), 'known methods go through as sent')
  const refused = gw.logs.filter(l => l.msg === 'request rejected' && l.status === 400 && l.error === 'bad_request' && l.protocol === 'HTTP/2')
  t.same(refused.map(l => l.method), ['delete', 'Delete', 'FOO', 'get'], 'logged with the method as sent')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="(unmatched)",method="OTHER",status="400"}'), 4, 'counted')
})
