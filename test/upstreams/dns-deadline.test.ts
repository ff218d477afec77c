import t, { type Test } from 'tap'
import { request } from 'undici'
import type { SrvRecord } from 'node:dns'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { by } from '../../src/upstreams/dns-deadline.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { startBackends } from './backends.ts'

// An SRV answer's names were looked up two at a time with no deadline, and startup and reloads wait
// for every entry's first round: 30 names the DNS does not answer held them for minutes.

type Answer = Array<{ address: string, family: number }>

/**
 * Lookups that answer only when the test says; each call counted by name. Closed (at the test's
 * end), every lookup answers at once: the lookups take turns in the whole process (see inTurn).
 */
function hangingNames (t: Test, slow: (name: string) => boolean, fast: (name: string) => string) {
  const calls = new Map<string, number>()
  const waiting: Array<(a: Answer) => void> = []
  let closed = false
  const answer = (address = '127.0.0.9') => { for (const resolve of waiting.splice(0)) resolve([{ address, family: 4 }]) }
  t.teardown(() => { closed = true; answer() })
  return {
    calls: (name: string) => calls.get(name) ?? 0,
    lookup: async (name: string): Promise<Answer> => {
      calls.set(name, (calls.get(name) ?? 0) + 1)
      if (!slow(name) || closed) return [{ address: fast(name), family: 4 }]
      return new Promise<Answer>(resolve => waiting.push(resolve))
    },
    /** Answers the lookups waiting (with `address`), oldest first. */
    answer
  }
}

t.test('a round ends by its deadline: names the DNS does not answer hold neither ready nor the names that answer, which serve', async t => {
  const bs = await startBackends(t, 3)
  const records: SrvRecord[] = [
    ...bs.map((b, i) => ({ name: `a${i}.test`, port: Number(new URL(b.url).port), priority: 0, weight: 1 })),
    ...Array.from({ length: 30 }, (_, i) => ({ name: `b${String(i).padStart(2, '0')}.test`, port: 9, priority: 0, weight: 1 }))
  ]
  const names = hangingNames(t, name => name.startsWith('b'), () => '127.0.0.1')
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

t.test('an SRV target still being looked up is not looked up again: the next rounds wait on that lookup, and keep its answer; the others keep theirs while it holds the thread', async t => {
  const [b] = await startBackends(t, 1)
  const port = Number(new URL(b!.url).port)
  const names = hangingNames(t, name => name === 'slow.test', () => '127.0.0.1')
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
  t.equal(names.calls('fast.test'), 1, 'fast.test is not looked up while slow.test holds the thread')
  t.same(upstream.targets.map(x => x.url), [b!.url], 'and keeps its address')
  t.equal(lines.filter(l => l.target === 'slow.test').length, 1, 'logged once')

  names.answer('127.0.0.2')
  t.ok(await until(() => names.calls('slow.test') === 2), 'answered: the next round looks it up again')
  const at = rounds
  t.ok(await until(() => rounds >= at + 3), 'rounds go on, the new lookup not answering in time either')
  t.equal(names.calls('slow.test'), 2, 'still one at a time')
  t.same(upstream.targets.map(x => x.url).sort(), [b!.url, 'http://127.0.0.2:8080'], 'its last answer is kept')
})

t.test('a name whose lookup does not answer: ready by the deadline, the next rounds wait on that lookup, and take its answer however late', async t => {
  const names = hangingNames(t, () => true, () => '')
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

// dns.lookup runs in libuv's thread pool, where such lookups take at most two threads (of 4): each
// entry looked two names up at once, and one the DNS never answers holds its thread ~10 s, so the
// proxy's own connects (undici looks the target's name up there too) waited: every request a 504.
t.test('lookups take turns in the whole process: one at a time across entries and upstreams, a name not begun by its deadline is not looked up', async t => {
  let running = 0
  let most = 0
  const asked: string[] = []
  const hung: Array<() => void> = []
  let closed = false
  t.teardown(() => { closed = true; for (const end of hung.splice(0)) end() })
  const lookup = async (name: string): Promise<Answer> => {
    asked.push(name)
    most = Math.max(most, ++running)
    try {
      if (name.startsWith('hang') && !closed) await new Promise<void>(resolve => hung.push(resolve))
      else await new Promise(resolve => setImmediate(resolve))
      return [{ address: '127.0.0.1', family: 4 }]
    } finally { running-- }
  }
  const { log } = memoryLogger()
  const srv = (prefix: string) => async () => Array.from({ length: 4 }, (_, i) => ({ name: `${prefix}${i}.test`, port: 8080, priority: 0, weight: 1 }))
  const upstreams = [
    new Upstream('a', { targets: [{ url: 'http://a.test', resolve: 'dns', dnsInterval: 200 }, { url: 'http://_http._tcp.a.test', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined)),
    new Upstream('b', { targets: [{ url: 'http://b.test', resolve: 'dns', dnsInterval: 200 }, { url: 'http://_http._tcp.b.test', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  ]
  const discoveries = [
    startDnsDiscovery(upstreams[0]!, log, { lookup, resolveSrv: srv('a') }),
    startDnsDiscovery(upstreams[1]!, log, { lookup, resolveSrv: srv('b') })
  ]
  t.teardown(async () => { for (const d of discoveries) d.stop(); for (const u of upstreams) await u.close() })
  await Promise.all(discoveries.map(d => d.ready))
  t.equal(most, 1, 'one lookup at a time in the process')
  t.ok(asked.length >= 10, `every name was looked up: ${asked.length} lookups`)

  // One that hangs holds the thread: no other begins until it ends.
  const c = new Upstream('c', { targets: [{ url: 'http://hang.test', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const hanging = startDnsDiscovery(c, log, { lookup, resolveSrv: srv('c') })
  t.teardown(async () => { hanging.stop(); await c.close() })
  t.ok(await until(() => hung.length === 1), 'hang.test is looked up')
  const before = asked.length
  t.ok(await until(() => upstreams[0]!.dnsLookups.ok + upstreams[0]!.dnsLookups.failed >= 8 + 4), 'rounds go on')
  t.equal(asked.length, before, 'no other lookup while it holds the thread')
  t.equal(most, 1)
  for (const end of hung.splice(0)) end()
  t.ok(await until(() => asked.length > before + 4), 'once it ends, the others are looked up again')
  t.equal(most, 1)
})

t.test('a failed lookup supersedes an earlier late answer: a name DNS no longer has does not get that answer back', async t => {
  let calls = 0
  let late: ((a: Answer) => void) | undefined
  let closed = false
  t.teardown(() => { closed = true; late?.([]) })
  const lookup = async (): Promise<Answer> => {
    // 1: answers late (10.0.0.1); 2-5: the name is gone; 6 on: no answer in time.
    const call = ++calls
    if (closed) throw Object.assign(new Error('closed'), { code: 'ENOTFOUND' })
    if (call >= 2 && call <= 5) throw Object.assign(new Error('getaddrinfo ENOTFOUND svc.test'), { code: 'ENOTFOUND' })
    return await new Promise<Answer>(resolve => { late = resolve })
  }
  const { log } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://svc.test:8080', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, { lookup, resolveSrv: async () => [] })
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  // Polled: the lookup here holds no handle, and the deadline's timer is unref'd.
  t.ok(await until(() => upstream.dnsLookups.failed === 1), 'the first round is late')
  late?.([{ address: '10.0.0.1', family: 4 }])
  t.ok(await until(() => calls >= 6), 'four rounds say the name is gone, the next is late')
  const rounds = upstream.dnsLookups.failed + upstream.dnsLookups.ok
  t.ok(await until(() => upstream.dnsLookups.failed + upstream.dnsLookups.ok > rounds), 'the late round ends')
  t.equal(upstream.dnsLookups.ok, 0, 'no round took 10.0.0.1')
  t.notOk(upstream.targets.some(x => x.url === 'http://10.0.0.1:8080'), 'nor is it a target')
})

t.test('the deadlines hold no process open: their timers are unref\'d', async t => {
  const timers = () => process.getActiveResourcesInfo().filter(r => r === 'Timeout').length
  const before = timers()
  const never = new Promise<never>(() => {})
  void by(never, performance.now() + 60_000).catch(() => {})
  t.equal(timers(), before, 'by()')

  const names = hangingNames(t, () => true, () => '')
  const { log } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://_http._tcp.svc.test', resolve: 'dns', dnsInterval: '1h' }] }, upstreamEvents(log, undefined))
  let srv = false
  const discovery = startDnsDiscovery(upstream, log, { lookup: names.lookup, resolveSrv: async () => { srv = true; return [{ name: 'a.test', port: 80, priority: 0, weight: 1 }] } })
  t.teardown(async () => { discovery.stop(); await upstream.close() })
  t.ok(await until(() => srv && names.calls('a.test') === 1), 'the round waits on a.test')
  t.equal(timers(), before, 'an SRV round\'s')
})

t.test('healthy DNS and many names: lookups wait their turn rather than give up, so every upstream gets its targets, and nothing is logged as failed', async t => {
  // One lookup at a time in the process: 40 names of 30 ms each do not fit a 500 ms round. Waiting
  // turns were once dropped at the round's end: the same names lost every round and never had targets.
  const { log, lines } = memoryLogger()
  const lookup = async (name: string): Promise<Answer> => {
    await new Promise(resolve => setTimeout(resolve, 30))
    return [{ address: `127.0.0.${Number(name.slice(1, -5)) + 1}`, family: 4 }]
  }
  const upstreams = Array.from({ length: 40 }, (_, i) => new Upstream(`u${i}`, { targets: [{ url: `http://n${i}.test:8080`, resolve: 'dns', dnsInterval: 1000 }] }, upstreamEvents(log, undefined)))
  const discoveries = upstreams.map(u => startDnsDiscovery(u, log, { lookup, resolveSrv: async () => [] }))
  t.teardown(async () => { for (const d of discoveries) d.stop(); await Promise.all(upstreams.map(u => u.close())) })
  t.ok(await until(() => upstreams.every((u, i) => u.targets.some(x => x.url === `http://127.0.0.${i + 1}:8080`)), 10_000), 'every upstream has its address')
  t.same(upstreams.map(u => u.dnsLookups.failed).filter(n => n > 0), [], 'no round counted as failed')
  t.same(lines.filter(l => l.msg === 'DNS discovery failed; keeping the last targets'), [], 'none logged as failed')
})
