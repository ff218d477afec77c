import t from 'tap'
import { lookup } from 'node:dns/promises'
import { waitFor } from '../reload/helpers.ts'
import { fresh, goodAndFlaky, startCluster } from './helpers.ts'

t.test('workers: active health checks apply to the addresses DNS discovery found', async t => {
  const { good, flaky, sickens } = await goodAndFlaky(t)
  const { cli, primary, workers, url } = await startCluster(t, `  pool:
    targets: [ { url: "${good.url}" }, { url: "http://localhost:${flaky.port}", resolve: dns, dnsInterval: 1s } ]
    healthCheck: { path: /health, interval: 200ms, unhealthyAfter: 1 }`, '  - { name: api, match: { path: /api }, upstream: pool }')
  // localhost may resolve to ::1 as well, where nothing listens: that target fails its checks from the start.
  const resolved = (await lookup('localhost', { all: true })).map(a => `http://${a.family === 6 ? `[${a.address}]` : a.address}:${flaky.port}`)

  // Sick only now that every worker serves: the verdict must reach them as a broadcast.
  sickens()
  const told = (pid: unknown) => resolved.every(target => cli.lines.some(l => l.msg === 'target unhealthy' && l.pid === pid && l.target === target))
  t.ok(await waitFor(() => told(primary.pid) && workers.every(told) ? true : undefined, 10_000),
    `the primary checked, and both workers were told about, every address: ${resolved.join(', ')}`)
  t.same(new Set(await fresh(`${url}/api`, 20)), new Set(['200 good']), 'no worker sends to the sick target')
})
