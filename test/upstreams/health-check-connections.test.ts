import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

t.test('a target answering its checks with a wrong status keeps the check\'s connection: no handshake per check', async t => {
  const perSocket = new Map<Socket, number>()
  const server = createServer((req, res) => {
    perSocket.set(req.socket, (perSocket.get(req.socket) ?? 0) + 1)
    res.statusCode = 503
    res.end('overloaded')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const gw = await startGateway(`
upstreams:
  busy:
    targets: [ { url: "${url}" } ]
    healthCheck: { path: /health, interval: 1s, timeout: 900ms }
routes:
  - { name: all, match: { path: /* }, upstream: busy }
`)
  t.teardown(() => gw.close())
  // A check timed out (a stalled loaded machine) rightly drops its connection: counted per connection,
  // one answered 503 then carries the next checks. Were a 503 to drop it, each would carry one.
  const most = () => Math.max(0, ...perSocket.values())
  t.ok(await until(() => most() >= 3, 30_000), `3 checks on one connection (at most ${most()} of ${perSocket.size} connections)`)
  t.ok(await until(() => gw.logs.some(l => l.msg === 'target unhealthy'), 30_000), 'unhealthy')
  t.match(gw.logs.find(l => l.msg === 'target unhealthy'), { target: url, reason: 'status 503' }, 'failed, unhealthy')
})
