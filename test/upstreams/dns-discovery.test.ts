import t from 'tap'
import { request } from 'undici'
import { promises as dnsPromises, type LookupAllOptions, type SrvRecord } from 'node:dns'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
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
  const failed = upstream.dnsLookups.failed
  t.ok(await until(() => upstream.dnsLookups.failed >= failed + 2), 'lookups fail, and are tried again')
  t.equal(lines.filter(l => l.msg === 'DNS discovery failed; keeping the last targets').length, 1, 'logged once for the streak')
  t.same(urls(), [bs[0]!.url, bs[1]!.url].sort(), 'lookup failures keep the last answer')

  failing = false
  records = records.filter(r => r.port !== ports[0])
  t.ok(await until(() => urls().length === 1), 'a record that disappears removes its target')
  t.same(urls(), [bs[1]!.url])
  t.ok(first.pool.closed, 'the removed target\'s pool is closed')
  t.ok(lines.some(l => l.msg === 'upstream targets changed'))
})

t.test('SRV records: a record whose name does not resolve, or with target ".", is skipped; the others are used', async t => {
  const bs = await startBackends(t, 3)
  const ports = bs.map(b => Number(new URL(b.url).port))
  const record = (name: string, port: number, priority = 10): SrvRecord => ({ name, port, priority, weight: 1 })
  let records = [record('a.test', ports[0]!), record('b.test', ports[1]!)]
  const resolver = {
    lookup: async (name: string) => {
      if (name.endsWith('.invalid')) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' })
      return [{ address: '127.0.0.1', family: 4 }]
    },
    resolveSrv: async () => records
  }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 30 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const urls = () => upstream.targets.map(x => x.url).sort().join(' ')
  t.equal(urls(), [bs[0]!.url, bs[1]!.url].sort().join(' '))

  records = [record('a.test', ports[0]!), record('c.test', ports[2]!), record('gone.invalid', 1234)]
  const ac = [bs[0]!.url, bs[2]!.url].sort().join(' ')
  t.ok(await until(() => urls() === ac), `the names that resolve are used: ${urls()}`)
  t.ok(lines.some(l => l.msg === 'DNS discovery: an SRV target does not resolve; using the others' && l.target === 'gone.invalid'), 'the one that does not is logged')

  // node reports the target "." (RFC 2782: the service is not available) as ''.
  records = [record('', 80, 0), record('b.test', ports[1]!)]
  t.ok(await until(() => urls() === bs[1]!.url), `a "." record, though of the lowest priority, is ignored: ${urls()}`)

  records = [record('gone.invalid', 1234), record('a.test', ports[0]!, 20)]
  t.ok(await until(() => urls() === bs[0]!.url), `no name of the lowest priority resolves: the next priority is used: ${urls()}`)

  records = [record('', 0, 0)]
  const unavailable = () => lines.filter(l => l.msg === 'DNS discovery failed; keeping the last targets' && String((l.err as { message?: string } | undefined)?.message).includes('not available')).length
  t.ok(await until(() => unavailable() === 1), 'an answer of only "." is a failed lookup')
  t.equal(urls(), bs[0]!.url, 'which keeps the last targets')
})

t.test('one DNS round at a time: a slow lookup neither overlaps the next rounds nor lands after a newer answer', async t => {
  let answer = '127.0.0.1'
  let calls = 0
  let active = 0
  let maxActive = 0
  let slowStarted = false
  let slowAnswered = false
  const resolver = {
    lookup: async () => {
      const now = answer
      calls++
      active++
      maxActive = Math.max(maxActive, active)
      // The third lookup takes 700 ms (several intervals); it answers what was true when it was asked.
      if (calls === 3) { slowStarted = true; await new Promise(resolve => setTimeout(resolve, 700)); slowAnswered = true }
      active--
      return [{ address: now, family: 4 }]
    },
    resolveSrv: systemResolver.resolveSrv
  }
  const added: string[] = []
  const events = { ...upstreamEvents(memoryLogger().log, undefined), targetsChanged: (_: string, a: readonly string[]) => { added.push(...a) } }
  const upstream = new Upstream('svc', { targets: [{ url: 'http://svc.test:1234', resolve: 'dns', dnsInterval: 100 }] }, events)
  const discovery = startDnsDiscovery(upstream, memoryLogger().log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  t.ok(await until(() => slowStarted), 'a lookup is slow')
  answer = '127.0.0.2'
  t.ok(await until(() => upstream.targets.some(x => x.url === 'http://127.0.0.2:1234')), 'the new answer is applied')
  // Its answer is taken (or not) at once: a poll after it sees the outcome. Then rounds go on.
  t.ok(await until(() => slowAnswered), 'the slow lookup has answered')
  const answeredBy = calls
  t.ok(await until(() => calls >= answeredBy + 2), 'rounds went on')
  t.equal(maxActive, 1, 'never two lookups at once')
  t.same(added, ['http://127.0.0.1:1234', 'http://127.0.0.2:1234'], 'the stale answer never came back')
  t.same(upstream.targets.map(x => x.url), ['http://127.0.0.2:1234'])
})

t.test('requests waiting on a target DNS removes go to the others, never to its closed pool', async t => {
  // The same port on two loopback addresses: a name resolving to both is two targets.
  const serve = async (host: string, delayMs: number, port = 0): Promise<Server> => {
    const server = createServer((req, res) => { req.resume(); setTimeout(() => res.end(host), delayMs) })
    await new Promise<void>(resolve => server.listen(port, host, resolve))
    t.teardown(() => { server.closeAllConnections(); server.close() })
    return server
  }
  // Fast enough to serve all the others in time, slow enough that its own queue (whose end would let it
  // take the slow target's) lasts while the six requests come in and are seen waiting on a busy machine.
  const fast = { port: ((await serve('127.0.0.1', 300)).address() as AddressInfo).port }
  // Slow enough that its answer is still under way when the next DNS round (1s at the most often) removes it.
  await serve('127.0.0.2', 3_000, fast.port)
  // Discovery looks names up through dns.promises.lookup: svc.test is answered here.
  let answer = ['127.0.0.1', '127.0.0.2']
  const lookup = dnsPromises.lookup
  dnsPromises.lookup = (async (host: string, options: LookupAllOptions) => host === 'svc.test'
    ? answer.map(address => ({ address, family: 4 }))
    : await lookup(host, options)) as typeof lookup
  t.teardown(() => { dnsPromises.lookup = lookup })
  const gw = await startGateway(`upstreams:
  svc:
    targets: [ { url: "http://svc.test:${fast.port}", resolve: dns, dnsInterval: 1s } ]
    connections: 1
    queue: { max: 10, timeout: 10s }
    retries: false
    passive: false
routes:
  - { name: all, match: { path: /* }, upstream: svc }
`)
  t.teardown(() => gw.close())
  const upstream = gw.gateway.runtime.upstreams.get('svc')!
  const removed = upstream.targets.find(x => x.url === `http://127.0.0.2:${fast.port}`)!
  const answers = Promise.all(Array.from({ length: 6 }, async () => {
    const res = await request(`${gw.url}/x`)
    return `${res.statusCode} ${await res.body.text()}`
  }))
  t.ok(await until(() => removed.waiting.length === 2), 'two requests wait on the slow target')
  answer = ['127.0.0.1']
  t.ok(await until(() => upstream.targets.length === 1), 'DNS removes it')
  const started = performance.now()
  const got = await answers
  t.same(got.sort(), [...Array(5).fill('200 127.0.0.1'), '200 127.0.0.2'], 'the one in flight there ends there; the others are served by the target left')
  t.ok(removed.pool.closed)
  t.ok(performance.now() - started < 6_000, 'without waiting out the queue timeout')
})

// srvDomain left `_b` of `_a._b` (a name of service labels only): the fallback to the name never ran.
t.test('SRV name of service labels only: its targets\' Host is the name itself', async t => {
  const resolver = {
    lookup: async () => [{ address: '127.0.0.1', family: 4 }],
    resolveSrv: async (): Promise<SrvRecord[]> => [{ name: 'node.test', port: 8080, priority: 1, weight: 1 }]
  }
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_a._b', resolve: 'dns' }] }, upstreamEvents(memoryLogger().log, undefined))
  const discovery = startDnsDiscovery(upstream, memoryLogger().log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  t.same(upstream.targets.map(x => [x.url, x.host]), [['http://127.0.0.1:8080', '_a._b']])
})
