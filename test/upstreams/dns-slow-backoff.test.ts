import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Upstream } from '../../src/upstreams/upstream.ts'
import { startDnsDiscovery } from '../../src/upstreams/dns-discovery.ts'
import { upstreamEvents } from '../../src/upstreams/events.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// A name marked silent was looked up again unasked every 30 s, and the system resolver held each such
// lookup 10-30 s (timeout × attempts × nameservers), no other discovery lookup beginning meanwhile: a
// live name went up to 29 s stale in every 31 s for as long as the DNS stayed silent; 4 silent names
// took their unasked lookups one after the other.

type Answer = Array<{ address: string, family: number }>

/** How long the system resolver holds a silent name's lookup here (10 s and more for a real one). */
const HOLD = 200

t.test('slow names are looked up unasked after three times their hold, twice as long each time, and never two back to back; the others go on', async t => {
  const holds: Array<{ name: string, start: number, end: number }> = []
  let live = 0
  // The system resolver: the dead names' lookups hold the thread HOLD, then fail as getaddrinfo does.
  const lookup = async (name: string): Promise<Answer> => {
    if (name === 'live.test') { live++; return [{ address: '127.0.0.1', family: 4 }] }
    const start = performance.now()
    await sleep(HOLD)
    holds.push({ name, start, end: performance.now() })
    throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${name}`), { code: 'EAI_AGAIN' })
  }
  const { log } = memoryLogger()
  const upstreams = ['dead1', 'dead2', 'live'].map(name => new Upstream(name, { targets: [{ url: `http://${name}.test:8080`, resolve: 'dns', dnsInterval: 100 }] }, upstreamEvents(log, undefined)))
  // The DNS does not answer them either.
  const resolver = { lookup, resolveSrv: async () => [], answers: async () => false }
  const discoveries = upstreams.map(u => startDnsDiscovery(u, log, resolver))
  t.teardown(async () => { for (const d of discoveries) d.stop(); for (const u of upstreams) await u.close() })

  t.ok(await until(() => holds.length >= 6, 15_000), `each dead name looked up three times: ${holds.length} lookups`)
  for (const name of ['dead1.test', 'dead2.test']) {
    const [a, b, c] = holds.filter(h => h.name === name) as [typeof holds[0], typeof holds[0], typeof holds[0]]
    const first = b.start - a.end
    const second = c.start - b.end
    t.ok(first >= 3 * (a.end - a.start), `${name}: the first retry after three times its hold at least (${Math.round(first)} ms)`)
    t.ok(second >= 6 * (a.end - a.start), `${name}: the next after twice that (${Math.round(second)} ms)`)
  }
  // Past the first lookups (the names not yet known slow), the thread is left free between two.
  const retries = holds.slice(2)
  for (const [i, h] of retries.slice(1).entries()) {
    const before = retries[i] as typeof holds[0]
    t.ok(h.start - before.end >= 2 * HOLD, `${before.name} then ${h.name}: ${Math.round(h.start - before.end)} ms free between`)
  }
  const liveNow = live
  t.ok(await until(() => live >= liveNow + 3), 'the live name is looked up meanwhile')
})
