import t from 'tap'
import { request } from 'undici'
import type { SrvRecord } from 'node:dns'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { startBackends } from './backends.ts'

// An SRV answer's names were looked up two at a time with no deadline, and startup and reloads wait
// for every entry's first round: 30 names the DNS does not answer held them for minutes.

type Answer = Array<{ address: string, family: number }>

/** Lookups that answer only when the test says; each call counted by name. */
function hangingNames (slow: (name: string) => boolean, fast: (name: string) => string) {
  const calls = new Map<string, number>()
  const waiting: Array<(a: Answer) => void> = []
  return {
    calls: (name: string) => calls.get(name) ?? 0,
    lookup: async (name: string): Promise<Answer> => {
      calls.set(name, (calls.get(name) ?? 0) + 1)
      if (!slow(name)) return [{ address: fast(name), family: 4 }]
      return new Promise<Answer>(resolve => waiting.push(resolve))
    },
    /** Answers the lookups waiting (the first with `address`), oldest first. */
    answer: (address = '127.0.0.9') => { for (const resolve of waiting.splice(0)) resolve([{ address, family: 4 }]) }
  }
}

t.test('a round ends by its deadline: names the DNS does not answer hold neither ready nor the names that answer, which serve', async t => {
  const bs = await startBackends(t, 3)
  const records: SrvRecord[] = [
    ...bs.map((b, i) => ({ name: `a${i}.test`, port: Number(new URL(b.url).port), priority: 0, weight: 1 })),
    ...Array.from({ length: 30 }, (_, i) => ({ name: `b${String(i).padStart(2, '0')}.test`, port: 9, priority: 0, weight: 1 }))
  ]
  const names = hangingNames(name => name.startsWith('b'), () => '127.0.0.1')
  t.teardown(() => names.answer())
  const { log, lines } = memoryLogger()
  // A 1 s interval: the round's deadline is 500 ms (half of it).
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 1000 }] }, upstreamEvents(log, undefined))
  const started = performance.now()
  const discovery = startDnsDiscovery(upstream, log, { lookup: names.lookup, resolveSrv: async () => records })
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  let readyAfter = -1
  void discovery.ready.then(() => { readyAfter = performance.now() - started })
  t.ok(await until(() => readyAfter >= 0), 'ready, though 30 names never answer')
  t.ok(readyAfter < 1_500, `by the deadline (500 ms), give or take a busy machine: ${Math.round(readyAfter)} ms`)
  t.same(upstream.targets.map(x => x.url).sort(), bs.map(b => b.url).sort(), 'the names that answered are the targets')
  for (const b of bs) {
    const res = await request(`${b.url}/x`, { dispatcher: upstream.targets.find(x => x.url === b.url)!.pool })
    t.equal(res.statusCode, 200, `${b.name} serves`)
    await res.body.dump()
  }
  t.match(lines.find(l => l.target === 'b00.test'), { level: 40, msg: 'DNS discovery: an SRV target did not answer in time; keeping its last addresses' }, 'a late name is logged')
})

t.test('an SRV target still being looked up is not looked up again: the next rounds wait on that lookup, and keep its answer', async t => {
  const [b] = await startBackends(t, 1)
  const port = Number(new URL(b!.url).port)
  const names = hangingNames(name => name === 'slow.test', () => '127.0.0.1')
  t.teardown(() => names.answer())
  let rounds = 0
  const resolveSrv = async () => {
    rounds++
    return [{ name: 'fast.test', port, priority: 0, weight: 1 }, { name: 'slow.test', port: 8080, priority: 0, weight: 1 }]
  }
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, { lookup: names.lookup, resolveSrv })
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  let ready = false
  void discovery.ready.then(() => { ready = true })
  t.ok(await until(() => ready), 'ready while slow.test has not answered')
  t.same(upstream.targets.map(x => x.url), [b!.url], 'fast.test serves')
  t.ok(await until(() => rounds >= 5), 'rounds go on')
  t.equal(names.calls('slow.test'), 1, 'slow.test: one lookup, which the later rounds wait on')
  t.ok(names.calls('fast.test') >= 4, 'fast.test is looked up each round')
  t.equal(lines.filter(l => l.target === 'slow.test').length, 1, 'logged once')

  names.answer('127.0.0.2')
  t.ok(await until(() => names.calls('slow.test') === 2), 'answered: the next round looks it up again')
  const at = rounds
  t.ok(await until(() => rounds >= at + 3), 'rounds go on, the new lookup not answering in time either')
  t.equal(names.calls('slow.test'), 2, 'still one at a time')
  t.same(upstream.targets.map(x => x.url).sort(), [b!.url, 'http://127.0.0.2:8080'], 'its last answer is kept')
})

t.test('a name whose lookup does not answer: ready by the deadline, the next rounds wait on that lookup, and take its answer however late', async t => {
  const names = hangingNames(() => true, () => '')
  t.teardown(() => names.answer())
  const { log, lines } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://svc.test:8080', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, { lookup: names.lookup, resolveSrv: async () => [] })
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  let ready = false
  void discovery.ready.then(() => { ready = true })
  t.ok(await until(() => ready), 'ready while the name has not answered')
  t.match(lines.find(l => l.msg === 'DNS discovery failed; keeping the last targets'), { err: { code: 'ETIMEOUT' } }, 'a failed round')
  t.ok(await until(() => upstream.dnsLookups.failed >= 4), 'rounds go on')
  t.equal(names.calls('svc.test'), 1, 'one lookup, which the later rounds wait on')
  // Its answer comes between two rounds: the next one, whose own lookup does not answer in time either
  // (a DNS that always answers late), takes it.
  names.answer('127.0.0.3')
  t.ok(await until(() => upstream.targets.some(x => x.url === 'http://127.0.0.3:8080')), 'its answer, late, is taken')
})
