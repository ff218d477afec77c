import t from 'tap'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { MAX_ADDRESSES, startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// A name answering thousands of addresses made as many targets, each a pool and a health check.

const CUT = `DNS discovery: more than ${MAX_ADDRESSES} addresses; using the first ${MAX_ADDRESSES}`

/** `n` addresses (10.0.x.y: never connected to), in a different order at each call, as DNS rotates them. */
function addresses (n: number, rotation: number): Array<{ address: string, family: number }> {
  const all = Array.from({ length: n }, (_, i) => ({ address: `10.0.${Math.floor(i / 250)}.${i % 250 + 1}`, family: 4 }))
  return [...all.slice(rotation % n), ...all.slice(0, rotation % n)]
}

t.test('an entry makes at most 256 targets, the same ones whatever the order of the answer; the cut is logged once per change', async t => {
  t.equal(MAX_ADDRESSES, 256)
  let count = 300
  let lookups = 0
  const resolver = { lookup: async () => addresses(count, 37 * lookups++), resolveSrv: async () => [] }
  const { log, lines } = memoryLogger()
  let changes = 0
  const events = { ...upstreamEvents(log, undefined), targetsChanged: () => { changes++ } }
  const upstream = new Upstream('svc', { targets: [{ url: 'http://many.test:8080', resolve: 'dns', dnsInterval: 20 }] }, events)
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  const urls = () => upstream.targets.map(x => x.url)
  const first = addresses(300, 0).map(a => `http://${a.address}:8080`).sort().slice(0, MAX_ADDRESSES)
  t.equal(upstream.targets.length, MAX_ADDRESSES, '300 addresses: 256 targets')
  t.same([...urls()].sort(), first, 'the first 256 in URL order')
  const cuts = () => lines.filter(l => l.msg === CUT)
  t.match(cuts(), [{ level: 40, upstream: 'svc', name: 'many.test', found: 300, used: MAX_ADDRESSES }], 'logged')

  let at = lookups
  t.ok(await until(() => lookups >= at + 5), 'rounds go on, each answer in another order')
  t.equal(changes, 1, 'the targets stay the same')
  t.equal(cuts().length, 1, 'logged once')

  count = 310
  t.ok(await until(() => cuts().length === 2), 'more addresses: logged again')
  at = lookups
  t.ok(await until(() => lookups >= at + 5), 'rounds go on')
  t.equal(cuts().length, 2, 'once')
  t.match(cuts()[1], { found: 310 })

  count = 200
  t.ok(await until(() => upstream.targets.length === 200), 'under the cap: every address')
  t.equal(cuts().length, 2)
})

// Every record of an SRV answer was looked up at once before the cap: 3,000 records, 3,000 lookups
// in libuv's thread pool each round, which zlib and crypto share.
t.test('an SRV answer: only the records that can be kept are looked up, one at a time', async t => {
  const records = Array.from({ length: 3_000 }, (_, i) => ({ name: `n${String(i).padStart(4, '0')}.svc.test`, port: 8080, priority: 0, weight: 1 }))
  let lookups = 0
  let running = 0
  let most = 0
  const resolver = {
    lookup: async (host: string) => {
      lookups++
      most = Math.max(most, ++running)
      await new Promise(resolve => setImmediate(resolve))
      running--
      return [{ address: `10.${Math.floor(Number(host.slice(1, 5)) / 250)}.0.${Number(host.slice(1, 5)) % 250 + 1}`, family: 4 }]
    },
    resolveSrv: async () => [...records].reverse()
  }
  const { log } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: '1h' }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, resolver)
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  await discovery.ready
  t.equal(upstream.targets.length, MAX_ADDRESSES)
  t.equal(lookups, MAX_ADDRESSES, 'one lookup per record kept')
  t.equal(most, 1, 'one at a time (a thread of the pool at most)')
  t.ok(upstream.targets.every(x => x.host === 'svc.test'))
  t.same(upstream.targets.map(x => x.url).sort(), records.slice(0, MAX_ADDRESSES).map((_, i) => `http://10.${Math.floor(i / 250)}.0.${i % 250 + 1}:8080`).sort(), 'the first records by name')
})
