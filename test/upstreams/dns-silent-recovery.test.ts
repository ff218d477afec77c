import t, { type Test } from 'tap'
import { promises as dnsPromises } from 'node:dns'
import { appendFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery, type Resolver } from '../../src/upstreams/dns-discovery.ts'
import { dnsAnswers } from '../../src/upstreams/dns-deadline.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { fakeDns, type FakeAnswer } from '../helpers/fake-dns.ts'

// A name whose system lookup hung past its round and failed is marked silent: it is looked up
// through the system resolver again only once the DNS answers it. That check asked one c-ares
// resolver, A only, of the name: with a dead first nameserver it never reached the second, and a
// name the system resolver finds in /etc/hosts was never asked of it, so such names stayed
// unresolved 5 minutes after the system resolver would answer them again.

type Answer = Array<{ address: string, family: number }>

/**
 * dead.test under discovery (dnsInterval `intervalMs`, in each of `upstreams`) with a fake system
 * lookup: it hangs (the DNS silent) until the test ends it as the system resolver gives up
 * (EAI_AGAIN), or, once `answer` is set (what the system resolver finds now), answers that. The DNS
 * servers are `servers`. Returns once the name is marked and `rounds` more rounds have failed.
 */
async function silentName (t: Test, servers: string[], answers: NonNullable<Resolver['answers']>, { intervalMs = 200, upstreams = ['dead'], rounds = 3 } = {}) {
  const before = dnsPromises.getServers()
  dnsPromises.setServers(servers)
  let calls = 0
  const hung: Array<() => void> = []
  const state = { answer: '' }
  const lookup = async (): Promise<Answer> => {
    calls++
    if (state.answer !== '') return [{ address: state.answer, family: 4 }]
    return await new Promise<Answer>((_resolve, reject) => hung.push(() => reject(Object.assign(new Error('getaddrinfo EAI_AGAIN dead.test'), { code: 'EAI_AGAIN' }))))
  }
  const { log } = memoryLogger()
  const resolver: Resolver = { lookup, resolveSrv: async () => [], answers }
  const ups = upstreams.map(name => new Upstream(name, { targets: [{ url: 'http://dead.test:8080', resolve: 'dns', dnsInterval: intervalMs }] }, upstreamEvents(log, undefined)))
  const discoveries = ups.map(u => startDnsDiscovery(u, log, resolver))
  t.teardown(async () => {
    for (const d of discoveries) d.stop()
    for (const end of hung.splice(0)) end()
    dnsPromises.setServers(before)
    for (const u of ups) await u.close()
  })
  const [dead] = ups as [Upstream]
  // At least 1 s (five rounds of 200 ms): a slow name is looked up unasked again after three times that.
  t.ok(await until(() => hung.length === 1 && dead.dnsLookups.failed >= Math.ceil(1_000 / intervalMs)), 'its lookup hangs past its round')
  hung.shift()?.()
  const failed = dead.dnsLookups.failed
  t.ok(await until(() => dead.dnsLookups.failed >= failed + rounds), 'its rounds go on, failing')
  t.equal(calls, 1, 'marked: not looked up through the system resolver while the DNS is silent')
  return { dead, discoveries, state, calls: () => calls }
}

const hostsFile = (t: Test, text: string): string => {
  const path = join(t.testdir({}), 'hosts')
  writeFileSync(path, text)
  return path
}

t.test('the first nameserver dead: the second one answering brings a marked name back at once', async t => {
  const down = await fakeDns(() => 'none')
  let says: FakeAnswer = 'none'
  const up = await fakeDns(() => says)
  t.teardown(async () => { await down.close(); await up.close() })
  const hosts = hostsFile(t, '127.0.0.1 localhost\n')
  const { dead, state, calls } = await silentName(t, [down.server, up.server], (name, end, signal) => dnsAnswers(name, end, signal, hosts))

  // The second server answers again, and the system resolver (past the dead first one) with it.
  says = { a: '127.0.0.2' }
  state.answer = '127.0.0.2'
  const from = performance.now()
  t.ok(await until(() => dead.targets.some(x => x.url === 'http://127.0.0.2:8080')), 'its address')
  t.ok(performance.now() - from < 2_000, `within a few rounds (${Math.round(performance.now() - from)} ms)`)
  t.equal(calls(), 2, 'looked up once more')
  t.ok(down.asked.includes('dead.test'), 'the dead server was asked too')
})

t.test('the DNS still silent, the name added to the hosts file: a marked name comes back at once', async t => {
  const dns = await fakeDns(() => 'none')
  t.teardown(() => dns.close())
  const hosts = hostsFile(t, '127.0.0.1 localhost\n')
  const { dead, state, calls } = await silentName(t, [dns.server], (name, end, signal) => dnsAnswers(name, end, signal, hosts))

  // An emergency entry (Docker's --add-host, Kubernetes' hostAliases): the system resolver reads it first.
  appendFileSync(hosts, '127.0.0.2 other.test DEAD.test\n')
  state.answer = '127.0.0.2'
  const from = performance.now()
  t.ok(await until(() => dead.targets.some(x => x.url === 'http://127.0.0.2:8080')), 'its address')
  t.ok(performance.now() - from < 2_000, `within a few rounds (${Math.round(performance.now() - from)} ms)`)
  t.equal(calls(), 2, 'looked up once more')
})

t.test('a query under way for a marked name is cancelled once discovery stops everywhere, not before', async t => {
  const dns = await fakeDns(() => 'none')
  t.teardown(() => dns.close())
  const hosts = hostsFile(t, '')
  const asked: Array<{ signal: AbortSignal, done: Promise<number> }> = []
  const answers = (name: string, end: number, signal: AbortSignal): Promise<boolean> => {
    const answer = dnsAnswers(name, end, signal, hosts)
    asked.push({ signal, done: answer.then(() => performance.now()) })
    return answer
  }
  // Round deadline 1 s: a query begun stays pending that long unless cancelled.
  const { discoveries } = await silentName(t, [dns.server], answers, { intervalMs: 2_000, upstreams: ['dead', 'same-name'], rounds: 0 })
  t.ok(await until(() => asked.length > 0), 'asked of the DNS')
  const [query] = asked as [{ signal: AbortSignal, done: Promise<number> }]
  discoveries[0]?.stop()
  t.notOk(query.signal.aborted, 'another discovery resolves the name: its query goes on')
  const stopped = performance.now()
  discoveries[1]?.stop()
  t.ok(query.signal.aborted, 'none does')
  const after = await query.done - stopped
  t.ok(after < 400, `the query ends at once (${Math.round(after)} ms), holding no exit`)
})

t.test('dnsAnswers: any answer of any server (to both A and AAAA), or the hosts file; none by the deadline is no', async t => {
  const silent = await fakeDns(() => 'none')
  const nx = await fakeDns(() => 'nxdomain')
  t.teardown(async () => { await silent.close(); await nx.close() })
  const before = dnsPromises.getServers()
  t.teardown(() => dnsPromises.setServers(before))
  const hosts = hostsFile(t, '127.0.0.9 listed.test # a comment\n')
  dnsPromises.setServers([silent.server])
  t.equal(await dnsAnswers('x.test', performance.now() + 100, undefined, hosts), false, 'a silent DNS: no')
  t.equal(await dnsAnswers('listed.test', performance.now() + 100, undefined, hosts), true, 'in the hosts file')
  dnsPromises.setServers([silent.server, nx.server])
  const from = performance.now()
  t.equal(await dnsAnswers('x.test', performance.now() + 1_000, undefined, hosts), true, 'NXDOMAIN from the second server is an answer')
  t.ok(performance.now() - from < 500, 'at once, not after the first server\'s time')
  t.same([...new Set(nx.asked)], ['x.test'])
})
