import t from 'tap'
import type { SrvRecord } from 'node:dns'
import { memoryLogger } from '../helpers/gateway.ts'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery, systemResolver } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { until } from '../helpers/wait.ts'

// An address no URL can hold (an IPv6 zone ID from the resolver, an SRV port above 65535) made the
// target's creation throw: the whole answer was dropped at every round ("Invalid URL").

const LEFT_OUT = 'DNS discovery: addresses that cannot be targets are left out'
const FAILED = 'DNS discovery failed; keeping the last targets'

t.test('an address with a zone ID is left out, logged once while the answer holds it; the others are used', async t => {
  let answer = [{ address: '127.0.0.1', family: 4 }, { address: 'fe80::1%lo', family: 6 }]
  let lookups = 0
  const resolver = { lookup: async () => { lookups++; return answer }, resolveSrv: systemResolver.resolveSrv }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://svc.test:1234', resolve: 'dns', dnsInterval: 30 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const urls = () => upstream.targets.map(x => x.url)
  const count = (msg: string) => lines.filter(l => l.msg === msg).length
  t.same(urls(), ['http://127.0.0.1:1234'], 'the usable address is a target')
  t.ok(await until(() => lookups >= 4), 'rounds go on')
  t.equal(count(LEFT_OUT), 1, 'logged once, not every round')
  t.match(lines.find(l => l.msg === LEFT_OUT), { level: 40, upstream: 'svc', name: 'svc.test', addresses: ['http://[fe80::1%lo]:1234'] })
  t.equal(count(FAILED), 0, 'not a failed lookup')

  answer = [{ address: '127.0.0.2', family: 4 }]
  t.ok(await until(() => urls().join() === 'http://127.0.0.2:1234'), 'a new answer is taken')
  answer = [{ address: '127.0.0.2', family: 4 }, { address: 'fe80::2%lo', family: 6 }]
  t.ok(await until(() => count(LEFT_OUT) === 2), 'an unusable address coming back is logged again')
  t.same(urls(), ['http://127.0.0.2:1234'])

  answer = [{ address: 'fe80::2%lo', family: 6 }]
  t.ok(await until(() => count(FAILED) >= 1), 'an answer with no usable address is a failed lookup')
  t.match(lines.find(l => l.msg === FAILED), { err: { message: 'no address of the name can be a target' } })
  t.same(urls(), ['http://127.0.0.2:1234'], 'which keeps the last targets')
})

t.test('an SRV record with a port above 65535 is left out; the others of its priority are used', async t => {
  const records: SrvRecord[] = [{ name: 'a.test', port: 70000, priority: 10, weight: 1 }, { name: 'b.test', port: 8080, priority: 10, weight: 1 }]
  const resolver = { lookup: async () => [{ address: '127.0.0.1', family: 4 }], resolveSrv: async () => records }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 1000 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  t.same(upstream.targets.map(x => [x.url, x.host]), [['http://127.0.0.1:8080', 'svc.test']])
  t.match(lines.find(l => l.msg === LEFT_OUT), { addresses: ['http://127.0.0.1:70000'] })
  t.notOk(lines.some(l => l.msg === FAILED))
})
