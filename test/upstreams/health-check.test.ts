import t from 'tap'
import type { SrvRecord } from 'node:dns'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { memoryLogger, startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { startHealthChecks } from '../../src/upstreams/health-check.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import type { UpstreamConfig } from '../../src/config/schema.ts'
import { startBackends } from './backends.ts'

const loopback = { lookup: async () => [{ address: '127.0.0.1', family: 4 }] }

/** An upstream with its DNS discovery (names resolve to 127.0.0.1; SRV answers are `srv()`), then its health checks. */
async function checked (t: { teardown (fn: () => unknown): void }, config: UpstreamConfig, srv: () => SrvRecord[] = () => []) {
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', config, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, { ...loopback, resolveSrv: async () => srv() })
  await discovery.ready
  const stop = startHealthChecks([upstream], (u, url, healthy) => u.setTargetHealth(url, healthy))
  t.teardown(async () => { discovery.stop(); await stop(); await upstream.close() })
  return { upstream, lines }
}

t.test('a target failing its checks, which DNS drops and brings back before the next check, comes back unhealthy', async t => {
  const [a, b] = await startBackends(t, 2)
  b!.healthy = false
  const record = (port: string): SrvRecord => ({ name: 'x.test', port: Number(port), priority: 10, weight: 1 })
  let records = [record(new URL(a!.url).port), record(new URL(b!.url).port)]
  const { upstream, lines } = await checked(t, {
    targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 20 }],
    healthCheck: { path: '/health', interval: 800, timeout: 100, unhealthyAfter: 1, healthyAfter: 2 },
    passive: false
  }, () => records)
  const target = () => upstream.targets.find(x => x.url === b!.url)
  t.ok(await until(() => target()?.healthy === false), 'b is found unhealthy')

  // Right after a check, so that the next one comes after b is back.
  const checks = b!.checks
  t.ok(await until(() => b!.checks > checks), 'a check')
  const before = target()
  records = [records[0]!]
  t.ok(await until(() => target() === undefined), 'DNS drops b')
  records = [record(new URL(a!.url).port), record(new URL(b!.url).port)]
  t.ok(await until(() => target() !== undefined), 'and brings it back')
  t.not(target(), before, 'as a new target')
  t.ok(await until(() => target()?.healthy === false, 2_000), 'which takes the verdict of its address\'s checks')
  t.equal(lines.filter(l => l.msg === 'target unhealthy' && l.target === b!.url).length, 2, 'and says so')
})

t.test('targets at the same address (from two entries) share the health checks\' verdict', async t => {
  const [a, b] = await startBackends(t, 2)
  a!.healthy = false
  const port = new URL(a!.url).port
  const { upstream } = await checked(t, {
    targets: [{ url: a!.url }, { url: `http://a.test:${port}`, resolve: 'dns', dnsInterval: 10_000 }, { url: b!.url }],
    healthCheck: { path: '/health', interval: 100, unhealthyAfter: 1, healthyAfter: 1 }
  })
  const copies = () => upstream.snapshot().targets.filter(x => x.url === a!.url)
  t.same(copies().map(x => x.host), [`127.0.0.1:${port}`, `a.test:${port}`], 'two targets, each with its Host')
  t.ok(await until(() => copies().every(x => !x.healthy)), `both copies are unhealthy: ${JSON.stringify(copies().map(x => x.healthy))}`)
  a!.healthy = true
  t.ok(await until(() => copies().every(x => x.healthy)), 'and both come back')
})

t.test('a health check whose body does not arrive within the timeout fails', async t => {
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    if (req.url !== '/health') { res.end('ok'); return }
    res.writeHead(200, { 'content-length': '10' })
    res.write('ok') // and no more
  })
  t.teardown(() => up.close())
  const { upstream } = await checked(t, {
    targets: [{ url: up.url }],
    healthCheck: { path: '/health', interval: 100, timeout: 200, unhealthyAfter: 1 }
  })
  t.ok(await until(() => upstream.targets[0]?.healthy === false, 3_000), 'the target is unhealthy')
})

t.test('a target found unhealthy is logged once, with the last failed check\'s reason: a status, the timeout, a connection error', async t => {
  const [failing] = await startBackends(t, 1)
  failing!.healthy = false
  const sockets = new Set<Socket>()
  const silent = createServer(socket => { sockets.add(socket.on('error', () => {}).on('close', () => sockets.delete(socket))) })
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); silent.close(() => resolve()) }))
  const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
  // Timeout 300 ms: a check of the failing target, answered at once, does not time out on a busy machine (its reason stays its status).
  const gw = await startGateway(`
upstreams:
  svc:
    targets: [ { url: "${failing!.url}" }, { url: "${silentUrl}" }, { url: "http://127.0.0.1:1" } ]
    healthCheck: { path: /health, interval: 400ms, timeout: 300ms, unhealthyAfter: 2 }
routes:
  - { name: all, match: { path: /* }, upstream: svc }
`)
  t.teardown(() => gw.close())
  const unhealthy = () => gw.logs.filter(l => l.msg === 'target unhealthy')
  t.ok(await until(() => unhealthy().length === 3), 'the three are found out')
  const checks = failing!.checks
  t.ok(await until(() => failing!.checks >= checks + 3), 'checks go on failing')
  const reasons = Object.fromEntries(unhealthy().map(l => [l.target, l.reason]))
  t.match(reasons, { [failing!.url]: 'status 503', [silentUrl]: 'timeout (300 ms)', 'http://127.0.0.1:1': /^ECONNREFUSED: / })
  t.equal(unhealthy().length, 3, 'once per transition, not per failed check')
})
