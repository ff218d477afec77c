import t, { type Test } from 'tap'
import { createServer } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// A request that comes while the gateway drains (behind a response whose head went out before the
// stop) is answered 503 shutting_down, logged and counted as the gateway's answer; an upgrade alike,
// never routed (it used to run its plugins and open a WebSocket upstream, closed at once 1001).

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'
const PLAIN = 'GET /second HTTP/1.1\r\nHost: a\r\n\r\n'

/** `second` pipelined behind a GET /slow whose answer takes 600 ms; the stop begins 200 ms in. */
async function drainWith (t: Test, second: string): Promise<{ got: string, seen: string[], gw: TestGateway }> {
  const seen: string[] = []
  const up = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    res.writeHead(200, { 'content-type': 'text/plain' })
    res.write('part1 ')
    setTimeout(() => res.end('part2'), 600)
  })
  const wss = new WebSocketServer({ server: up })
  wss.on('connection', (_ws, req) => seen.push(`websocket ${req.url}`))
  await new Promise<void>(resolve => up.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { wss.close(); up.closeAllConnections(); up.close() })
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(up.address() as AddressInfo).port}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  const s = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => s.destroy())
  let got = ''
  s.on('data', d => { got += d.toString('latin1') })
  s.on('error', () => {})
  s.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n' + second)
  t.ok(await until(() => got.includes('part1')), 'the first response has begun')
  await new Promise(resolve => setTimeout(resolve, 200))
  await gw.close()
  await until(() => s.destroyed || s.readableEnded)
  return { got, seen, gw }
}

t.test('an upgrade that comes during the drain is refused 503, never sent upstream', async t => {
  const { got, seen, gw } = await drainWith(t, UPGRADE)
  t.match(got, /part2\r\n0\r\n\r\nHTTP\/1\.1 503 Service Unavailable\r\n[^]*connection: close\r\n\r\n\{"error":"shutting_down"/, 'answered after the response before it')
  t.notMatch(got, /101 Switching Protocols/)
  t.same(seen, ['GET /slow'], 'the upstream never saw the upgrade')
  t.match(gw.logs.find(l => l.msg === 'request rejected'), { path: '/ws', method: 'GET', status: 503, error: 'shutting_down' }, 'logged as refused')
  t.notOk(gw.logs.some(l => l.msg === 'request' && l.path === '/ws'), 'not routed')
})

t.test('a plain request that comes during the drain: 503, logged and counted', async t => {
  const { got, seen, gw } = await drainWith(t, PLAIN)
  t.match(got, /part2\r\n0\r\n\r\nHTTP\/1\.1 503 Service Unavailable\r\n[^]*\{"error":"shutting_down"/)
  t.same(seen, ['GET /slow'])
  t.match(gw.logs.find(l => l.msg === 'request rejected'), { path: '/second', method: 'GET', status: 503, error: 'shutting_down' }, 'an access line, as every answer has')
  t.match(await gw.metrics.registry.metrics(), /portcullis_http_requests_total\{route="\(unmatched\)",method="GET",status="503"\} 1\n/, 'and counted')
})
