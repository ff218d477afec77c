import t from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

t.test('a target answering its checks with a wrong status keeps the check\'s connection: no handshake per check', async t => {
  let connections = 0
  let checks = 0
  const server = createServer((req, res) => {
    checks++
    res.statusCode = 503
    res.end('overloaded')
  })
  server.on('connection', () => connections++)
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
  // A timeout would close the connection too: long enough for a loaded machine.
  t.ok(await until(() => checks >= 4, 30_000), `checked 4 times (${checks})`)
  t.match(gw.logs.find(l => l.msg === 'target unhealthy'), { target: url, reason: 'status 503' }, 'failed, unhealthy')
  t.equal(connections, 1, 'on one connection')
})
