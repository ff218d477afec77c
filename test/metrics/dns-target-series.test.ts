import t from 'tap'
import type { SrvRecord } from 'node:dns'
import { Metrics } from '../../src/metrics/metrics.ts'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// Never connected to: ejections are recorded by hand.
const A = 'http://127.0.0.1:1001'
const B = 'http://127.0.0.1:1002'
const record = (port: number): SrvRecord => ({ name: 'localhost', port, priority: 10, weight: 1 })

t.test('DNS discovery removing a target drops its ejection series (unless another entry has its address); a late failure does not bring it back', async t => {
  let records = [record(1001), record(1002)]
  const resolver = { lookup: async () => [{ address: '127.0.0.1', family: 4 }], resolveSrv: async () => records }
  const { log } = memoryLogger()
  const metrics = new Metrics({ defaultMetrics: false })
  // A is also a static target of its own entry: its series stays while that entry has it.
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 50 }, { url: A }], passive: { consecutiveFailures: 1, baseEjection: '1ms' } },
    upstreamEvents(log, metrics))
  metrics.watchUpstreams(new Map([['svc', upstream]]))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const ejected = async () => (await metrics.upstreamEjections.get()).values.map(v => v.labels.target).sort()
  const fromDns = (url: string) => upstream.targets.find(x => x.url === url && x.source === 0)!
  const b = fromDns(B)
  for (const target of [fromDns(A), b]) upstream.outcome(target, false, performance.now(), false)
  t.same(await ejected(), [A, B])

  records = [record(1001)]
  t.ok(await until(() => !upstream.targets.some(x => x.url === B)), 'B is no longer a target')
  t.same(await ejected(), [A], 'B\'s series is gone')
  // A request still finishing on the removed target fails: it is no longer in service, nothing to eject.
  t.ok(await until(() => !b.outlier.ejected(performance.now())), 'its ejection is over')
  upstream.outcome(b, false, performance.now(), false)
  t.same(await ejected(), [A], 'not brought back')

  records = [record(1002)]
  t.ok(await until(() => fromDns(A) === undefined), 'A is no longer a DNS target')
  t.same(await ejected(), [A, B], 'A\'s series stays: the static entry still has A (B, discovered again, starts at 0)')
})
