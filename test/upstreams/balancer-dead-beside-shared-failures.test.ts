import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { Target, type PoolSettings } from '../../src/upstreams/target.ts'
import { LeastConnections } from '../../src/upstreams/balancers/least-connections.ts'
import { P2cEwma } from '../../src/upstreams/balancers/p2c-ewma.ts'

// One target of three answers 500 to everything (a broken deploy: 500 is no passive-ejection status),
// while a share of the requests fail on every target (a path that answers 500 anywhere). With the
// failures a target may have allowed as 3 times the fewest any has, in counts, the broken target got
// a share of the others' requests that grew with the shared failures: its round-robin share from
// about a third (real gateway, least-connections: 12.7% of them failed with a tenth failing
// everywhere, 23% with a quarter, 48% with half; modelled below at 24 clients: 17%, 38%, 73%).

const BALANCERS = { 'least-connections': LeastConnections, 'p2c-ewma': P2cEwma }
const DURATION_MS = 3_500

/** A target in the model: its weight, and the share of its own requests it fails (1: all, at once). */
interface Modelled { weight?: number, fails?: number }

/**
 * The balancer and targets as the gateway runs them, on a clock of their own: `clients` each send a
 * request, then the next 1 ms after its end; a share `shared` fail on every target (a 500 after the
 * usual 20 ms); a target failing all its own answers every one with a 500 at once (0.5 ms), one
 * failing a share of them with a 500 after 20 ms. Timings vary by up to 30% (a fixed sequence: the
 * same on every run), and so does p2c-ewma's choice of two. Returns each target's share of the other
 * requests (those not failing everywhere), counted once the start has settled.
 */
async function model (Balancer: typeof BALANCERS[keyof typeof BALANCERS], specs: Modelled[], clients: number, shared: number): Promise<number[]> {
  const pool: PoolSettings = { connections: 1, pipelining: 1, keepAliveMs: 1000, connectMs: 1000, responseMs: 1000, idleMs: 1000 }
  const req = { clientIp: '127.0.0.1', headers: {}, path: '/' }
  const targets = specs.map((s, i) => new Target(`http://127.0.0.1:${10_001 + i}`, `127.0.0.1:${10_001 + i}`, s.weight ?? 1, 0, pool, undefined, undefined))
  const balancer = new Balancer(targets)
  let seed = 3
  const rnd = () => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
  const random = Math.random
  Math.random = rnd
  const vary = (ms: number) => ms * (0.7 + 0.6 * rnd())
  // Each client: the target its request is on (undefined: waiting), when that ends, how it goes.
  const cs = Array.from({ length: clients }, (_, i) => ({ on: undefined as Target | undefined, at: i * 0.1, ok: true, sent: 0 }))
  const other = targets.map(() => 0)
  try {
    for (let now = 0; now < 20_000;) {
      let c = cs[0]!
      for (const x of cs) if (x.at < c.at) c = x
      now = c.at
      if (c.on === undefined) {
        const picked = balancer.pick(req, now, undefined) as Target
        const i = targets.indexOf(picked)
        const own = specs[i]!.fails ?? 0
        picked.inFlight++
        c.on = picked
        c.sent = now
        const fails = rnd() < shared
        if (!fails && now > 2_000) other[i]!++
        c.ok = own < 1 && !fails && !(own > 0 && rnd() < own)
        c.at = now + vary(own === 1 ? 0.5 : 20)
      } else {
        const done = c.on
        done.inFlight--
        // As Upstream.outcome records them: a failed try's latency is at least twice the highest answers' estimate.
        if (c.ok) {
          done.latency.observe(now - c.sent, now)
          done.recentFailures.answered(now)
        } else {
          let highest = 0
          for (const x of targets) highest = Math.max(highest, x.latency.answers(now))
          done.latency.failed(Math.max(now - c.sent, 2 * highest), now)
          done.recentFailures.failed(now)
        }
        c.on = undefined
        c.at = now + 1
      }
    }
  } finally {
    Math.random = random
    await Promise.all(targets.map(x => x.pool.close()))
  }
  const total = other.reduce((a, b) => a + b, 0)
  return other.map(n => n / total)
}

const pc = (share: number) => `${(share * 100).toFixed(1)}%`

t.test('modelled in virtual time: a target failing all its own beside targets failing a share of theirs gets few of the other requests', async t => {
  // The most of the other requests t0 may take: a third would be its round-robin share.
  const bounds: Record<number, number> = { 0.1: 0.03, 0.25: 0.05, 0.5: 0.1 }
  for (const [balance, Balancer] of Object.entries(BALANCERS)) {
    for (const clients of [6, 24]) {
      for (const shared of [0.1, 0.25, 0.5]) {
        const share = (await model(Balancer, [{ fails: 1 }, {}, {}], clients, shared))[0]!
        t.ok(share <= bounds[shared]!, `${balance}, ${clients} clients, ${shared * 100}% failing everywhere: the failing target takes ${pc(share)} of the other requests (at most ${bounds[shared]! * 100}%)`)
      }
    }
  }
})

t.test('modelled in virtual time: a target failing half or more of its own gets well below its share while a quarter fail everywhere', async t => {
  // Allowed the failures landing everywhere in full once its share of answered tries was a third of
  // the best one's, a target failing half its own kept its round-robin share (33%: a sixth of the
  // other requests failed), one failing 90% 11%, one failing all 1%. Modelled: 5-13% for half, 1-3%
  // for three quarters.
  const bounds: Record<number, number> = { 0.5: 0.16, 0.75: 0.05 }
  for (const [balance, Balancer] of Object.entries(BALANCERS)) {
    for (const clients of [6, 24]) {
      for (const fails of [0.5, 0.75]) {
        const share = (await model(Balancer, [{ fails }, {}, {}], clients, 0.25))[0]!
        t.ok(share <= bounds[fails]!, `${balance}, ${clients} clients: a target failing ${fails * 100}% of its own takes ${pc(share)} of the other requests (at most ${bounds[fails]! * 100}%)`)
      }
    }
  }
})

t.test('modelled in virtual time: targets weighted 10 and 1 keep their split while some requests fail everywhere', async t => {
  // The heavy target takes 10 times the failures landing everywhere; allowed 3 times the light one's,
  // it lost requests to it (light: 18% with 6 clients on p2c-ewma, 21% with half failing everywhere).
  // Fair: 9%, or less at low concurrency, where the heavier target is preferred.
  for (const [balance, Balancer] of Object.entries(BALANCERS)) {
    for (const clients of [2, 6, 24]) {
      for (const shared of [0.25, 0.5]) {
        const light = (await model(Balancer, [{ weight: 10 }, { weight: 1 }], clients, shared))[1]!
        t.ok(light <= 0.11, `${balance}, ${clients} clients, ${shared * 100}% failing everywhere: the light target takes ${pc(light)} of the other requests (at most 11%)`)
      }
    }
  }
})

for (const balance of Object.keys(BALANCERS)) {
  t.test(`${balance}: a target answering 500 to everything gets few requests while a quarter fail everywhere`, async t => {
    const hits = [0, 0, 0]
    const backends = await Promise.all(hits.map((_, i) => startUpstream((req: IncomingMessage, res: ServerResponse) => {
      req.resume()
      if (req.url === '/x') hits[i]!++
      if (i === 0) { res.writeHead(500).end(); return }
      setTimeout(() => { if (req.url === '/boom') res.writeHead(500).end(); else res.end('ok') }, 20)
    })))
    t.teardown(() => Promise.all(backends.map(b => b.close())))
    const gw = await startGateway(`upstreams:
  up:
    balance: ${balance}
    targets: [ ${backends.map(b => `{ url: "${b.url}" }`).join(', ')} ]
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
    t.teardown(() => gw.close())
    const end = performance.now() + DURATION_MS
    const statuses: Record<number, number> = {}
    const loop = async (path: string) => {
      while (performance.now() < end) {
        const res = await request(`${gw.url}${path}`)
        await res.body.dump()
        if (path === '/x') statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
      }
    }
    // 6 clients on /x, 2 on /boom: about a quarter of the requests fail everywhere.
    await Promise.all([...Array.from({ length: 6 }, () => loop('/x')), ...Array.from({ length: 2 }, () => loop('/boom'))])
    const total = (statuses[200] ?? 0) + (statuses[500] ?? 0)
    t.ok(total >= 100, `enough requests to tell (${total})`)
    // Measured: 1-4% (23-26% and 27-29% with the allowance in failure counts). It is tried a few times a
    // second whatever the traffic: on a machine too busy to send many requests, a larger share.
    const failed = statuses[500] ?? 0
    t.ok(failed <= Math.max(0.1 * total, 12 * DURATION_MS / 1000), `at most 10% of the other requests (or 12 a second) fail on it: ${JSON.stringify(statuses)}, per target ${hits.join(', ')}`)
  })
}
