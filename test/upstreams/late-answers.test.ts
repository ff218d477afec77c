import t, { type Test } from 'tap'
import type { ServerResponse } from 'node:http'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import type { Target } from '../../src/upstreams/upstream.ts'

// Answers to requests sent before a target was taken out (breaker open, passive ejection), arriving
// once it is back in service, say nothing of it since: they must not take it out again.

/**
 * One target answering /fail* 503, /slow* 503 once release() is called, anything else 200; and a
 * gateway with `policy` for it, the four /slow requests already in its hands. A spare target beside
 * it, so that it is not the last one available (never ejected), gets none of these requests: weight
 * 1 against 1000, smooth round-robin gives it none of the first 500.
 */
async function withSlowRequests (t: Test, policy: string): Promise<{ gw: TestGateway, target: Target, get: (path: string) => Promise<number>, release: () => Promise<number[]> }> {
  const held: ServerResponse[] = []
  const up = await startUpstream((req, res) => {
    req.resume()
    if (req.url?.startsWith('/slow') === true) held.push(res)
    else res.writeHead(req.url?.startsWith('/fail') === true ? 503 : 200).end()
  })
  const spare = await startUpstream((req, res) => { req.resume(); res.end() })
  t.teardown(() => Promise.all([up.close(), spare.close()]))
  const gw = await startGateway(`upstreams:
  up:
    targets: [{ url: "${up.url}", weight: 1000 }, { url: "${spare.url}" }]
    retries: false
${policy}
routes:
  - name: all
    match: { path: /* }
    upstream: up
`)
  t.teardown(() => gw.close())
  const get = async (path: string) => {
    const res = await request(`${gw.url}${path}`)
    await res.body.dump()
    return res.statusCode
  }
  const slow = Promise.all(Array.from({ length: 4 }, (_, i) => get(`/slow${i}`)))
  t.ok(await until(() => held.length === 4, 10_000), 'four slow requests reached the target')
  const release = async () => {
    for (const res of held) res.writeHead(503).end()
    return slow
  }
  return { gw, target: gw.gateway.runtime.upstreams.get('up')!.targets[0]!, get, release }
}

t.test('circuit breaker: late failures of requests sent before it opened do not open it again once its probe closed it', async t => {
  const { gw, target, get, release } = await withSlowRequests(t, `    passive: false
    circuitBreaker: { minRequests: 2, failureRate: 0.5, halfOpenAfter: 300ms, window: 1m }`)
  const breaker = target.breaker!
  t.same([await get('/fail0'), await get('/fail1')], [503, 503])
  t.equal(breaker.state, 'open', 'two failures open it')
  t.ok(await until(() => breaker.allows(performance.now()), 10_000), 'halfOpenAfter passed')
  t.equal(await get('/ok-probe'), 200)
  t.ok(await until(() => breaker.state === 'closed', 10_000), 'the probe closed it')

  t.same(await release(), [503, 503, 503, 503], 'the four requests sent before it opened fail now')
  t.equal(breaker.state, 'closed', 'their failures change nothing')
  t.equal(gw.logs.filter(l => l.msg === 'circuit breaker open').length, 1, 'it opened once')

  t.same([await get('/fail2'), await get('/fail3')], [503, 503])
  t.equal(breaker.state, 'open', 'failures of requests sent since it closed count')
})

t.test('passive ejection: late failures of requests sent before an ejection do not eject the target again once it is back', async t => {
  const { gw, target, get, release } = await withSlowRequests(t, '    passive: { consecutiveFailures: 2, baseEjection: 300ms }')
  const ejections = () => gw.logs.filter(l => l.msg === 'target ejected after consecutive failures')
  t.same([await get('/fail0'), await get('/fail1')], [503, 503])
  t.equal(ejections().length, 1, 'two failures eject it')
  t.ok(await until(() => !target.outlier.ejected(performance.now()), 10_000), 'the ejection ran out')
  t.equal(await get('/ok'), 200, 'a request sent since is answered')

  t.same(await release(), [503, 503, 503, 503], 'the four requests sent before the ejection fail now')
  t.notOk(target.outlier.ejected(performance.now()), 'their failures do not eject it again')
  t.equal(ejections().length, 1)

  t.same([await get('/fail2'), await get('/fail3')], [503, 503])
  t.equal(ejections().length, 2, 'failures of requests sent since it came back count')
  t.equal(ejections()[1]?.ejectedForMs, 600, 'and eject it for twice as long')
})
