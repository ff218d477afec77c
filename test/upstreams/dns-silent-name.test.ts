import t from 'tap'
import { promises as dnsPromises } from 'node:dns'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery, systemResolver } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { fakeDns, type FakeAnswer } from '../helpers/fake-dns.ts'

// Discovery's system lookups go one at a time in the process, and one the DNS never answers holds its
// thread ~10 s (resolv.conf: 5 s × 2 attempts): a dead name was looked up again every round, and no
// other upstream's name was looked up for ~10 s of every dnsInterval (three dead names, none ever).

type Answer = Array<{ address: string, family: number }>

t.test('a name the DNS never answers holds the lookups\' thread once: later rounds ask the DNS of it without a thread, the other names go on, and it is looked up again once the DNS answers', async t => {
  let dnsSays: FakeAnswer = 'none'
  const server = await fakeDns(name => name === 'dead.test' ? dnsSays : { a: '127.0.0.1' })
  const servers = dnsPromises.getServers()
  dnsPromises.setServers([server.server])
  // The system resolver (which reads resolv.conf, not the fake server): dead.test's lookups hang until
  // the test ends them as it would after its attempts (EAI_AGAIN), or, once `deadAddress` is set, answer.
  const calls = new Map<string, number>()
  const called = (name: string) => calls.get(name) ?? 0
  const hung: Array<() => void> = []
  let deadAddress = ''
  const lookup = async (name: string): Promise<Answer> => {
    calls.set(name, called(name) + 1)
    if (name !== 'dead.test') return [{ address: '127.0.0.1', family: 4 }]
    if (deadAddress !== '') return [{ address: deadAddress, family: 4 }]
    return await new Promise<Answer>((_resolve, reject) => hung.push(() => reject(Object.assign(new Error('getaddrinfo EAI_AGAIN dead.test'), { code: 'EAI_AGAIN' }))))
  }
  t.teardown(async () => { for (const end of hung.splice(0)) end(); dnsPromises.setServers(servers); await server.close() })
  const resolver = { lookup, resolveSrv: async () => [], answers: systemResolver.answers }
  const { log } = memoryLogger()
  const dead = new Upstream('dead', { targets: [{ url: 'http://dead.test:8080', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const live = new Upstream('live', { targets: [{ url: 'http://live.test:8080', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const discoveries = [startDnsDiscovery(dead, log, resolver), startDnsDiscovery(live, log, resolver)]
  t.teardown(async () => { for (const d of discoveries) d.stop(); await dead.close(); await live.close() })

  // Five rounds (1 s): a slow name is looked up unasked again after three times that at least.
  t.ok(await until(() => hung.length === 1 && dead.dnsLookups.failed >= 5), 'dead.test\'s lookup hangs past its round')
  // The system resolver gives up.
  hung.shift()?.()
  const liveBefore = called('live.test')
  const failedBefore = dead.dnsLookups.failed
  t.ok(await until(() => dead.dnsLookups.failed >= failedBefore + 4), 'its rounds go on, failing')
  t.equal(called('dead.test'), 1, 'not looked up through the system resolver again while the DNS does not answer it')
  t.ok(server.asked.filter(n => n === 'dead.test').length >= 3, 'the DNS is asked of it instead, each round')
  t.ok(await until(() => called('live.test') >= liveBefore + 4), 'the other names are looked up meanwhile')
  t.equal(hung.length, 0, 'nothing holds the thread')

  // The DNS answers again (were it only that it has no such name): the system resolver is asked again.
  dnsSays = 'nxdomain'
  deadAddress = '127.0.0.2'
  t.ok(await until(() => dead.targets.some(x => x.url === 'http://127.0.0.2:8080')), 'its address, once the DNS answers it')
  t.equal(called('dead.test'), 2)
})
