import t from 'tap'
import { lookup } from 'node:dns/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startUpstream } from '../helpers/upstream.ts'
import { namedUpstream, waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

t.test('workers: active health checks apply to the addresses DNS discovery found', async t => {
  let sick = false
  // Serves traffic fine; fails its health check once `sick`.
  const flaky = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (req.url === '/health' && sick) res.writeHead(503).end()
    else res.writeHead(200).end('flaky')
  })
  const good = await namedUpstream('good')
  t.teardown(() => Promise.all([flaky.close(), good.close()]))
  const { cli, primary, workers, url } = await startCluster(t, `  pool:
    targets: [ { url: "${good.url}" }, { url: "http://localhost:${flaky.port}", resolve: dns, dnsInterval: 1s } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 }`, '  - { name: api, match: { path: /api }, upstream: pool }')
  // localhost may resolve to ::1 as well, where nothing listens: that target fails its checks from the start.
  const resolved = (await lookup('localhost', { all: true })).map(a => `http://${a.family === 6 ? `[${a.address}]` : a.address}:${flaky.port}`)

  // Sick only now that every worker serves: the verdict must reach them as a broadcast.
  sick = true
  const told = (pid: unknown) => resolved.every(target => cli.lines.some(l => l.msg === 'target unhealthy' && l.pid === pid && l.target === target))
  t.ok(await waitFor(() => told(primary.pid) && workers.every(told) ? true : undefined, 10_000),
    `the primary checked, and both workers were told about, every address: ${resolved.join(', ')}`)
  t.same(new Set(await fresh(`${url}/api`, 20)), new Set(['200 good']), 'no worker sends to the sick target')
})
