import t from 'tap'
import { promises as dnsPromises, type LookupAllOptions, type SrvRecord } from 'node:dns'
import { request } from 'undici'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger, startGateway } from '../helpers/gateway.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { callUntil, until } from '../helpers/wait.ts'

// A name that stopped resolving logged a warning, with its stack, every round of every entry, for as
// long as it failed, and nothing counted the failures.

const FAILED = 'DNS discovery failed; keeping the last targets'
const AGAIN = 'DNS discovery: resolving again'
const SKIPPED = 'DNS discovery: an SRV target does not resolve; using the others'

t.test('a streak of failed lookups is logged at its start and at its end, not every round', async t => {
  let failing = false
  const resolver = {
    lookup: async () => { if (failing) throw Object.assign(new Error('getaddrinfo EAI_AGAIN svc.test'), { code: 'EAI_AGAIN' }); return [{ address: '127.0.0.1', family: 4 }] },
    resolveSrv: async () => []
  }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://svc.test:1234', resolve: 'dns', dnsInterval: 20 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const count = (msg: string) => lines.filter(l => l.msg === msg).length

  for (const streak of [1, 2]) {
    failing = true
    const failed = upstream.dnsLookups.failed
    t.ok(await until(() => upstream.dnsLookups.failed >= failed + 5), `streak ${streak}: lookups fail round after round`)
    t.equal(count(FAILED), streak, 'one line for the streak')
    t.match(lines.findLast(l => l.msg === FAILED), { level: 40, upstream: 'svc', name: 'svc.test', err: { code: 'EAI_AGAIN' } })
    failing = false
    t.ok(await until(() => count(AGAIN) === streak), 'the name resolves again: said once')
    t.ok((lines.findLast(l => l.msg === AGAIN)?.failedRounds as number) >= 5, 'with how many rounds failed')
  }
  t.ok(await until(() => upstream.dnsLookups.ok >= 5), 'rounds go on resolving')
  t.equal(count(AGAIN), 2, 'not said again while it resolves')
  t.equal(count(FAILED), 2)
  t.same(upstream.targets.map(x => x.url), ['http://127.0.0.1:1234'], 'the target was kept throughout')
})

t.test('an SRV target that does not resolve is logged when it starts not to, not every round', async t => {
  const record = (name: string): SrvRecord => ({ name, port: 8080, priority: 10, weight: 1 })
  let records = [record('a.test'), record('gone.test')]
  let rounds = 0
  const resolver = {
    lookup: async (name: string) => {
      if (name === 'gone.test') throw Object.assign(new Error('getaddrinfo ENOTFOUND gone.test'), { code: 'ENOTFOUND' })
      return [{ address: '127.0.0.1', family: 4 }]
    },
    resolveSrv: async () => { rounds++; return records }
  }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 20 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const skipped = () => lines.filter(l => l.msg === SKIPPED).length
  t.ok(await until(() => rounds >= 5), 'rounds go on')
  t.equal(skipped(), 1, 'logged once')
  records = [record('a.test')]
  let at = rounds
  t.ok(await until(() => rounds >= at + 2), 'gone.test leaves the answer')
  records = [record('a.test'), record('gone.test')]
  at = rounds
  t.ok(await until(() => rounds >= at + 5), 'and comes back, still not resolving')
  t.equal(skipped(), 2, 'logged again, once')
})

t.test('portcullis_dns_lookups_total counts lookups by upstream and result', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  // Discovery looks names up through dns.promises.lookup: ok.test answers, down.test does not.
  const lookup = dnsPromises.lookup
  dnsPromises.lookup = (async (host: string, options: LookupAllOptions) => {
    if (host === 'down.test') throw Object.assign(new Error('getaddrinfo ENOTFOUND down.test'), { code: 'ENOTFOUND' })
    return host === 'ok.test' ? [{ address: '127.0.0.1', family: 4 }] : await lookup(host, options)
  }) as typeof lookup
  t.teardown(() => { dnsPromises.lookup = lookup })
  const gw = await startGateway(`
upstreams:
  svc:
    targets: [ { url: "http://ok.test:${up.port}", resolve: dns, dnsInterval: 1s }, { url: "http://down.test:${up.port}", resolve: dns, dnsInterval: 1s } ]
  plain:
    targets: [ { url: "${up.url}" } ]
routes:
  - { name: all, match: { path: /* }, upstream: svc }
  - { name: plain, match: { path: /plain }, upstream: plain }
`, { admin: true })
  t.teardown(() => gw.close())
  const admin = gw.adminUrl as string
  const value = (upstream: string, result: string) => metricValue(admin, `portcullis_dns_lookups_total{upstream="${upstream}",result="${result}"}`)
  let [ok, failed] = [0, 0]
  const read = async () => { [ok, failed] = await Promise.all([value('svc', 'ok'), value('svc', 'failed')]) }
  t.ok(await callUntil(read, () => ok >= 2 && failed >= 2, 10_000), `lookups counted by result: ${ok} ok, ${failed} failed`)
  const text = await (await request(`${admin}/metrics`)).body.text()
  t.notOk(text.includes('portcullis_dns_lookups_total{upstream="plain"'), 'no series for an upstream without resolve: dns')
  t.equal(gw.logs.filter(l => l.msg === FAILED).length, 1, 'logged once')
})
