import t from 'tap'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

// Failures a client provokes on every target (a path answering 500 wherever it goes) must raise the
// targets alike. Counted in a row and reset by any answer, they skewed least-connections and
// p2c-ewma: the target that had just answered was the cheapest, took the next requests and answered
// again, while the 500s kept the others above it (legit requests per target 4, 1342, 18), or a
// target that got mostly 500s for a while was starved (388, 360, 8).

const LOOPS = 6
const BOOM_LOOPS = 6
const DURATION_MS = 3_500

for (const balance of ['least-connections', 'p2c-ewma']) {
  t.test(`${balance}: 500s a client provokes on every target do not move the others' requests onto one`, async t => {
    const hits = [0, 0, 0]
    const booms = [0, 0, 0]
    const backends = await Promise.all(hits.map((_, i) => startUpstream((req: IncomingMessage, res: ServerResponse) => {
      req.resume()
      if (req.url === '/boom') { booms[i]!++; res.writeHead(500).end(); return }
      hits[i]!++
      setTimeout(() => res.end('ok'), 20)
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
    const loop = async (path: string) => {
      while (performance.now() < end) await (await request(`${gw.url}${path}`)).body.dump()
    }
    await Promise.all([...Array.from({ length: LOOPS }, () => loop('/x')), ...Array.from({ length: BOOM_LOOPS }, () => loop('/boom'))])

    const total = hits[0]! + hits[1]! + hits[2]!
    t.ok(total >= 100, `enough requests to tell (${total})`)
    // Even: a third each. Skewed, one took most, or one was starved.
    t.ok(Math.max(...hits) <= 0.6 * total && Math.min(...hits) >= 0.15 * total, `each target takes 15-60% of the legit requests: ${hits.join(', ')} booms ${booms.join(', ')}`)
  })
}
