import t from 'tap'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { load, startBackends, type Backend } from './backends.ts'

// Every failed try counts and logs, the ones retried too (with `retried: true`); the last one once.

async function gateway (t: { teardown (fn: () => unknown): void }, bs: Backend[], policy: string): Promise<TestGateway> {
  const gw = await startGateway(`upstreams:
  up:
    targets: [ ${bs.map(b => `{ url: "${b.url}" }`).join(', ')} ]
    balance: round-robin
    passive: false
    ${policy}
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return gw
}

async function counted (gw: TestGateway, metric: 'timeouts' | 'upstreamRetries', label: string, value: string): Promise<number> {
  const { values } = await gw.metrics[metric].get()
  return values.filter(v => (v.labels as Record<string, unknown>)[label] === value).reduce((n, v) => n + v.value, 0)
}

const failures = (gw: TestGateway, target: string) => gw.logs.filter(l => l.msg === 'upstream request failed' && l.target === target)

t.test('a timed-out try that is retried is counted in portcullis_timeouts_total and logged, retried: true', async t => {
  const [slow, fast] = await startBackends(t, 2) as [Backend, Backend]
  slow.delayMs = 1000
  const gw = await gateway(t, [slow, fast], 'timeouts: { response: 200ms }\n    retries: { attempts: 1, on: [timeout] }')
  const r = await load(`${gw.url}/x`, 2, 1)
  t.same(r.statuses, { 200: 2 })
  t.ok(slow.hits >= 1, 'some request tried the slow target first')
  t.equal(await counted(gw, 'upstreamRetries', 'reason', 'timeout'), slow.hits)
  t.equal(await counted(gw, 'timeouts', 'kind', 'upstream_response'), slow.hits, 'each timed-out try counted once')
  const lines = failures(gw, slow.url)
  t.equal(lines.length, slow.hits, 'a warning per failed try, naming its target')
  t.ok(lines.every(l => l.retried === true && l.level === 40), 'said to be retried')
  t.ok(gw.logs.some(l => l.msg === 'request' && l.tries === 2 && l.status === 200), 'the access line has both tries')
})

t.test('a retried try and the final one both count, once each; only the first says retried', async t => {
  const bs = await startBackends(t, 2)
  for (const b of bs) b.delayMs = 1000
  const gw = await gateway(t, bs, 'timeouts: { response: 200ms }\n    retries: { attempts: 1, on: [timeout] }')
  const r = await load(`${gw.url}/x`, 1, 1)
  t.same(r.statuses, { 504: 1 })
  t.equal(await counted(gw, 'timeouts', 'kind', 'upstream_response'), 2)
  const lines = gw.logs.filter(l => l.msg === 'upstream request failed')
  t.equal(lines.length, 2)
  t.same(lines.map(l => l.retried), [true, undefined])
  t.not(lines[0]!.target, lines[1]!.target, 'each names its own target')
})

t.test('a retried connect error is logged with the target that refused', async t => {
  const bs = await startBackends(t, 2) as [Backend, Backend]
  await bs[0].kill()
  const gw = await gateway(t, bs, 'retries: { attempts: 1, on: [connect-error] }')
  const r = await load(`${gw.url}/x`, 2, 1)
  t.same(r.statuses, { 200: 2 })
  const retried = await counted(gw, 'upstreamRetries', 'reason', 'connect-error')
  t.ok(retried >= 1)
  const lines = failures(gw, bs[0].url)
  t.equal(lines.length, retried, 'one warning per refused try')
  t.ok(lines.every(l => l.retried === true && (l.err as { code?: string }).code === 'ECONNREFUSED'))
  t.equal(failures(gw, bs[1].url).length, 0)
})
