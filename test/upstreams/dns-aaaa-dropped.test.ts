import t, { type Test } from 'tap'
import { promises as dnsPromises } from 'node:dns'
import { createSocket, type RemoteInfo } from 'node:dgram'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { dnsAnswers } from '../../src/upstreams/dns-deadline.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { fakeDns } from '../helpers/fake-dns.ts'

// A DNS that answers A queries but drops AAAA ones: getaddrinfo (either family, as discovery asks)
// waits for both, and gives the A's address ~15 s on. That lookup succeeding unmarked the name, so it
// held the thread every round; and the check asked of a marked name took the A answer alone as "the
// system resolver would answer".

type Answer = Array<{ address: string, family: number }>

/** A DNS server passing queries on to `to`, but AAAA ones only while `passAaaa` is set. */
async function dropsAaaa (t: Test, to: string) {
  const [host, port] = to.split(':') as [string, string]
  const socket = createSocket('udp4')
  const onward = createSocket('udp4')
  const asking = new Map<number, RemoteInfo>()
  const state = { passAaaa: false, server: '' }
  socket.on('message', (query, from) => {
    let at = 12
    while ((query[at] as number) > 0) at += 1 + (query[at] as number)
    if (query.readUInt16BE(at + 1) === 28 && !state.passAaaa) return
    asking.set(query.readUInt16BE(0), from)
    onward.send(query, Number(port), host)
  })
  onward.on('message', reply => {
    const from = asking.get(reply.readUInt16BE(0))
    if (from !== undefined) socket.send(reply, from.port, from.address)
  })
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  t.teardown(() => { socket.close(); onward.close() })
  state.server = `127.0.0.1:${socket.address().port}`
  return state
}

const noHosts = (t: Test): string => {
  const path = join(t.testdir({}), 'hosts')
  writeFileSync(path, '')
  return path
}

t.test('dnsAnswers: both an A and an AAAA answer, of any server; an A alone is no', async t => {
  const dns = await fakeDns(() => ({ a: '127.0.0.2' }))
  const nx = await fakeDns(() => 'nxdomain')
  t.teardown(async () => { await dns.close(); await nx.close() })
  const aOnly = await dropsAaaa(t, dns.server)
  const before = dnsPromises.getServers()
  t.teardown(() => dnsPromises.setServers(before))
  const hosts = noHosts(t)

  dnsPromises.setServers([aOnly.server])
  t.equal(await dnsAnswers('x.test', performance.now() + 1_000, undefined, hosts), false, 'AAAA dropped: no')
  dnsPromises.setServers([aOnly.server, nx.server])
  t.equal(await dnsAnswers('x.test', performance.now() + 1_000, undefined, hosts), true, 'the second server answers AAAA (NXDOMAIN): yes')
  aOnly.passAaaa = true
  dnsPromises.setServers([aOnly.server])
  t.equal(await dnsAnswers('x.test', performance.now() + 1_000, undefined, hosts), true, 'AAAA answered, with no records: yes')
})

t.test('a name the DNS answers A but not AAAA for: looked up once, its late answer taken, not looked up each round; back within a round once AAAA is answered', async t => {
  const dns = await fakeDns(() => ({ a: '127.0.0.2' }))
  t.teardown(() => dns.close())
  const aOnly = await dropsAaaa(t, dns.server)
  const before = dnsPromises.getServers()
  dnsPromises.setServers([aOnly.server])
  t.teardown(() => dnsPromises.setServers(before))
  const hosts = noHosts(t)
  // The system resolver: the A's address once the AAAA query times out (1 s here, 15 s for a real one).
  let calls = 0
  const lookup = async (): Promise<Answer> => {
    calls++
    if (!aOnly.passAaaa) await new Promise(resolve => setTimeout(resolve, 1_000))
    return [{ address: aOnly.passAaaa ? '127.0.0.3' : '127.0.0.2', family: 4 }]
  }
  const { log } = memoryLogger()
  const upstream = new Upstream('svc', { targets: [{ url: 'http://svc.test:8080', resolve: 'dns', dnsInterval: 200 }] }, upstreamEvents(log, undefined))
  const discovery = startDnsDiscovery(upstream, log, { lookup, resolveSrv: async () => [], answers: (name, end, signal) => dnsAnswers(name, end, signal, hosts) })
  t.teardown(async () => { discovery.stop(); await upstream.close() })

  t.ok(await until(() => upstream.targets.some(x => x.url === 'http://127.0.0.2:8080')), 'its address, late')
  const failed = upstream.dnsLookups.failed
  t.ok(await until(() => upstream.dnsLookups.failed >= failed + 5), 'the next rounds fail as late')
  t.equal(calls, 1, 'without looking it up (its retry: 3 s on)')
  t.same(upstream.targets.map(x => x.url), ['http://127.0.0.2:8080'], 'keeping its address')

  aOnly.passAaaa = true
  const from = performance.now()
  t.ok(await until(() => upstream.targets.some(x => x.url === 'http://127.0.0.3:8080')), 'AAAA answered: looked up again')
  t.ok(performance.now() - from < 1_000, `within a few rounds (${Math.round(performance.now() - from)} ms)`)
  t.equal(calls, 2)
})
