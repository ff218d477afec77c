import t from 'tap'
import type { SrvRecord } from 'node:dns'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// A target DNS discovery dropped for one round came back as a new target, with no ejection and its
// breaker closed: a flapping answer sent full traffic back to a target known to be failing.

// Never connected to: failures are recorded by hand.
const A = 'http://127.0.0.1:1001'
const B = 'http://127.0.0.1:1002'
const record = (port: number): SrvRecord => ({ name: 'localhost', port, priority: 10, weight: 1 })

t.test('an address DNS drops for a round and brings back keeps its ejection and its open breaker', async t => {
  let records = [record(1001), record(1002)]
  const resolver = { lookup: async () => [{ address: '127.0.0.1', family: 4 }], resolveSrv: async () => records }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', {
    targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 20 }],
    passive: { consecutiveFailures: 1, baseEjection: '1m' },
    circuitBreaker: { minRequests: 1, halfOpenAfter: '1m' }
  }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const target = (url: string) => upstream.targets.find(x => x.url === url)
  const down = (url: string) => upstream.snapshot().targets.find(x => x.url === url)?.down

  const b = target(B)!
  upstream.outcome(b, false, upstream.begin(b), false)
  t.same(down(B), ['ejected', 'breaker-open'], 'B fails: ejected, its breaker open')

  records = [record(1001)]
  t.ok(await until(() => target(B) === undefined), 'DNS drops B')
  records = [record(1001), record(1002)]
  t.ok(await until(() => target(B) !== undefined), 'and brings it back')
  t.not(target(B), b, 'as a new target')
  t.same(down(B), ['ejected', 'breaker-open'], 'still ejected, its breaker still open')
  t.same(down(A), [], 'A was never out')
  t.equal(lines.filter(l => l.msg === 'target ejection ended').length, 0, 'no ejection end logged before its time')

  // A target that had learned nothing bad comes back clean, and what B learned goes with the new target.
  records = [record(1002)]
  t.ok(await until(() => target(A) === undefined), 'DNS drops A')
  records = [record(1001), record(1002)]
  t.ok(await until(() => target(A) !== undefined), 'and brings it back')
  t.same(down(A), [], 'A takes traffic')
  t.same(down(B), ['ejected', 'breaker-open'], 'B is still out')
})

t.test('a reload keeps what targets DNS had just dropped learned, for a target at their address to take', async t => {
  const config = { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns' as const }], passive: { consecutiveFailures: 1, baseEjection: '1m' } }
  const address = (url: string) => ({ url, host: 'svc.test', weight: 1 })
  const before = new Upstream('svc', config)
  before.setTargets(0, [address(A), address(B)])
  const b = before.targets.find(x => x.url === B)!
  before.outcome(b, false, before.begin(b), false)
  before.setTargets(0, [address(A)])
  const after = new Upstream('svc', config)
  after.inheritState(before)
  t.teardown(async () => { await before.close(); await after.close() })
  after.setTargets(0, [address(A), address(B)])
  t.same(after.snapshot().targets.map(x => [x.url, x.down]), [[A, []], [B, ['ejected']]], 'B, back after the reload, is still ejected')
})
