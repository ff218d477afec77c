import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { waitForLog } from '../helpers/logs.ts'
import { metricValue } from '../helpers/metric-value.ts'

// A request a route matched but refused before its plugins (an upgrade it does not take, TRACE) is
// counted under that route, and its `request rejected` line names the route.

t.test('refusals on a matched route: counted under it, logged with the route and upstream', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: plain, match: { path: /plain }, upstream: up, websocket: false }
`, { admin: true })
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const ws = await rawRequest(port, ['GET /plain HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=='])
  t.equal(ws.status, 400)
  const foo = await rawRequest(port, ['GET /plain HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: foo'])
  t.equal(foo.status, 400)
  const trace = await rawRequest(port, ['TRACE /plain HTTP/1.1', 'Host: a', 'Connection: close'])
  t.equal(trace.status, 405)
  const nowhere = await rawRequest(port, ['GET /nowhere HTTP/1.1', 'Host: a', 'Connection: close'])
  t.equal(nowhere.status, 404)

  for (const error of ['websocket_disabled', 'upgrade_refused', 'method_not_allowed']) {
    const line = await waitForLog(gw.logs, { msg: 'request rejected', error })
    t.match(line, { route: 'plain', upstream: 'up', path: '/plain' }, `${error}: the route that refused it`)
  }
  const unrouted = await waitForLog(gw.logs, { msg: 'request rejected', error: 'no_route' })
  t.notOk(unrouted !== undefined && ('route' in unrouted || 'upstream' in unrouted), 'a request no route took names none')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="plain",method="GET",status="400"}'), 2)
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="plain",method="OTHER",status="405"}'), 1)
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="(unmatched)",method="GET",status="404"}'), 1, 'a request no route took: unmatched')
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_http_requests_total{route="(unmatched)",method="GET",status="400"}'), 0, 'the refusals are not')
})
