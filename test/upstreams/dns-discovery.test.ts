import t from 'tap'
import { request } from 'undici'
import type { SrvRecord } from 'node:dns'
import { startGateway, memoryLogger } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery, systemResolver } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { startBackends } from './backends.ts'
import { until } from '../helpers/wait.ts'

t.test('resolve: dns turns a host name into one target per address (real lookup of localhost)', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`upstreams:
  svc: { targets: [ { url: "http://localhost:${up.port}", resolve: dns, dnsInterval: 1s } ] }
routes:
  - { name: all, match: { path: /* }, upstream: svc }
`)
  t.teardown(() => gw.close())
  const targets = gw.gateway.runtime.upstreams.get('svc')!.snapshot().targets
  t.same(targets.map(x => [x.url, x.host]), [[`http://127.0.0.1:${up.port}`, `localhost:${up.port}`]], 'resolved before the first request')
  const res = await request(`${gw.url}/hello`)
  t.equal(res.statusCode, 200)
  const seen = await res.body.json() as { headers: Record<string, string> }
  t.equal(seen.headers.host, `localhost:${up.port}`, 'the Host header is the name, not the address')
})

t.test('SRV records: targets are added and removed without a reload; a failed lookup keeps them', async t => {
  const bs = await startBackends(t, 3)
  const ports = bs.map(b => Number(new URL(b.url).port))
  let records: SrvRecord[] = [{ name: 'localhost', port: ports[0]!, priority: 10, weight: 1 }]
  let failing = false
  // Only the SRV answers are scripted (no DNS server to change here); the names they hold are looked up for real.
  const resolver = {
    lookup: systemResolver.lookup,
    resolveSrv: async () => { if (failing) throw Object.assign(new Error('queryTimeout'), { code: 'ETIMEOUT' }); return records }
  }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 50 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const urls = () => upstream.targets.map(x => x.url).sort()
  t.same(urls(), [bs[0]!.url])
  const first = upstream.targets[0]!

  records = [...records, { name: 'localhost', port: ports[1]!, priority: 10, weight: 1 }, { name: 'localhost', port: ports[2]!, priority: 20, weight: 1 }]
  t.ok(await until(() => urls().length === 2), 'a new record is added; the lower-priority one is not used')
  t.same(urls(), [bs[0]!.url, bs[1]!.url].sort())
  t.equal(upstream.targets.find(x => x.url === bs[0]!.url), first, 'a kept target keeps its pool and state')
  const res = await request(`${bs[1]!.url}/x`, { dispatcher: upstream.targets.find(x => x.url === bs[1]!.url)!.pool })
  t.equal(res.statusCode, 200, 'the added target is usable')
  await res.body.dump()

  failing = true
  const failures = () => lines.filter(l => l.msg === 'DNS discovery failed; keeping the last targets').length
  t.ok(await until(() => failures() >= 2), 'lookups fail, and are tried again')
  t.same(urls(), [bs[0]!.url, bs[1]!.url].sort(), 'lookup failures keep the last answer')

  failing = false
  records = records.filter(r => r.port !== ports[0])
  t.ok(await until(() => urls().length === 1), 'a record that disappears removes its target')
  t.same(urls(), [bs[1]!.url])
  t.ok(first.pool.closed, 'the removed target\'s pool is closed')
  t.ok(lines.some(l => l.msg === 'upstream targets changed'))
})
