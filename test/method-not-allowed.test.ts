import t from 'tap'
import { startGateway } from './helpers/gateway.ts'
import { h2Request, startH2Gateway } from './helpers/http2.ts'
import { waitForLog } from './helpers/logs.ts'
import { metricValue } from './helpers/metric-value.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { startUpstream } from './helpers/upstream.ts'

// RFC 9110 15.5.6: a method no route takes, on a host and path routes serve, is 405 with the methods
// they take in Allow; 404 stays for what no route serves with any method.
const routes = (up: string, filler: number) => `upstreams:
  up: { targets: [ { url: "${up}" } ] }
routes:
  - { name: m, match: { path: /m, methods: [GET, POST] }, upstream: up }
  - { name: m-v2, match: { path: /m, methods: [DELETE], headers: { x-v: "2" } }, upstream: up }
  - { name: item, match: { path: /items/:id, methods: [patch] }, upstream: up }
  - { name: api, match: { host: api.test, path: /h/*, methods: [PUT] }, upstream: up }
  - { name: wild, match: { host: "*.test", path: /h/*, methods: [GET] }, upstream: up }
  - { name: open-m, match: { host: open.test, path: /m, methods: [GET] }, upstream: up }
  - { name: open, match: { host: open.test, path: /* }, upstream: up }
${Array.from({ length: filler }, (_, i) => `  - { name: f${i}, match: { path: /f${i}/*, methods: [GET] }, upstream: up }\n`).join('')}`

const cases: Array<[method: string, path: string, host: string, extra: string[], status: number, allow?: string]> = [
  ['PUT', '/m', 'a.example', [], 405, 'GET, HEAD, POST'],
  ['OPTIONS', '/m', 'a.example', [], 405, 'GET, HEAD, POST'],
  ['PUT', '/m', 'a.example', ['x-v: 2'], 405, 'DELETE, GET, HEAD, POST'],
  ['PUT', '/items/7', 'a.example', [], 405, 'PATCH'],
  ['PUT', '/h/x', 'other.test', [], 405, 'GET, HEAD'],
  ['POST', '/h/x', 'api.test', [], 405, 'GET, HEAD, PUT'],
  ['PUT', '/h/x', 'a.example', [], 404],
  ['PUT', '/nope', 'a.example', [], 404],
  ['GET', '/nope', 'a.example', [], 404],
  ['HEAD', '/m', 'a.example', [], 200],
  ['PUT', '/m', 'open.test', [], 200] // the catch-all takes what /m's route does not
]

// 3 routes for any host are walked whole, 36 indexed by segment (src/routing/route-list.ts).
for (const filler of [0, 33]) {
  t.test(`HTTP/1.1, ${3 + filler} routes for any host: 405 with Allow where routes take the path with other methods`, async t => {
    const up = await startUpstream()
    t.teardown(() => up.close())
    const gw = await startGateway(routes(up.url, filler), { admin: true })
    t.teardown(() => gw.close())
    const port = Number(new URL(gw.url).port)
    for (const [method, path, host, extra, status, allow] of cases) {
      const name = `${method} ${host}${path} ${extra.join()}`
      const res = await rawRequest(port, [`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...extra, 'Connection: close'])
      t.equal(res.status, status, name)
      t.same(headerValues(res, 'allow'), allow === undefined ? [] : [allow], name)
      if (status === 405) t.match(JSON.parse(res.body), { error: 'method_not_allowed' }, name)
    }
    t.ok(await waitForLog(gw.logs, { msg: 'request rejected', method: 'PUT', path: '/items/7', status: 405, error: 'method_not_allowed' }), 'logged')
    t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="(unmatched)",method="PUT",status="405"}'), 4, 'counted unmatched')
  })
}

t.test('HTTP/2 (TLS and h2c): 405 with Allow, 404 for unknown paths', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', routes(up.url, 0))
  for (const h2c of [false, true]) {
    const session = await connect({ h2c })
    for (const [method, path, host, extra, status, allow] of cases) {
      const name = `${h2c ? 'h2c' : 'h2'} ${method} ${host}${path} ${extra.join()}`
      const headers = Object.fromEntries(extra.map(h => h.split(': ')))
      const res = await h2Request(session, { ':method': method, ':path': path, ':authority': host, ...headers })
      t.equal(res.status, status, name)
      t.equal(res.headers.allow, allow, name)
    }
  }
})
