import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { load, startBackends, type Backend } from './backends.ts'

const route = `
routes:
  - name: all
    match: { path: /* }
    upstream: up
`

async function gateway (t: { teardown (fn: () => unknown): void }, upstream: string) {
  const gw = await startGateway(`upstreams:\n  up:\n${upstream.replace(/^/gm, '    ')}\n${route}`)
  t.teardown(() => gw.close())
  return gw
}

const targets = (bs: Backend[], weights?: number[]) =>
  `targets:\n${bs.map((b, i) => `  - { url: "${b.url}"${weights ? `, weight: ${weights[i]}` : ''} }`).join('\n')}`

t.test('round-robin: traffic follows the weights (1:2:3) within 2% over 600 concurrent requests', async t => {
  const bs = await startBackends(t, 3)
  const gw = await gateway(t, targets(bs, [1, 2, 3]))
  const r = await load(`${gw.url}/x`, 600, 8)
  t.same(r.statuses, { 200: 600 })
  const shares = bs.map(b => (r.backends[b.name] ?? 0) / 600)
  ;[1 / 6, 2 / 6, 3 / 6].forEach((want, i) => t.ok(Math.abs(shares[i]! - want) <= 0.02, `${bs[i]!.name}: ${shares[i]!.toFixed(3)} of traffic, weight share ${want.toFixed(3)}`))
})

t.test('consistent-hash on a header: a key always reaches the same backend, keys spread', async t => {
  const bs = await startBackends(t, 3)
  const gw = await gateway(t, `balance: consistent-hash\nhashOn: { header: x-user }\n${targets(bs)}`)
  const seen = new Map<string, Set<string>>()
  for (let user = 0; user < 30; user++) {
    const r = await load(`${gw.url}/x`, 5, 2, { headers: () => ({ 'x-user': `u${user}` }) })
    seen.set(`u${user}`, new Set(Object.keys(r.backends)))
  }
  t.ok([...seen.values()].every(s => s.size === 1), 'each key went to exactly one backend')
  t.equal(new Set([...seen.values()].map(s => [...s][0])).size, 3, '30 keys use all 3 backends')
})

t.test('consistent-hash: requests with an empty key (header, cookie) are spread, not all sent to one backend', async t => {
  const cases: Array<[string, Record<string, string>]> = [['{ header: x-k }', { 'x-k': '' }], ['{ cookie: session }', { cookie: 'session=' }]]
  for (const [hashOn, headers] of cases) {
    const bs = await startBackends(t, 3)
    const gw = await gateway(t, `balance: consistent-hash\nhashOn: ${hashOn}\n${targets(bs)}`)
    const r = await load(`${gw.url}/x`, 30, 1, { headers: () => headers })
    t.same(r.statuses, { 200: 30 })
    t.same(Object.keys(r.backends).sort(), ['a', 'b', 'c'], `${hashOn}: round-robin over the 3 backends (${JSON.stringify(r.backends)})`)
  }
})

t.test('least-connections and p2c-ewma send little to a slow backend', async t => {
  for (const balance of ['least-connections', 'p2c-ewma']) {
    const bs = await startBackends(t, 3)
    bs[0]!.delayMs = 150
    const gw = await gateway(t, `balance: ${balance}\n${targets(bs)}`)
    const r = await load(`${gw.url}/x`, 300, 9)
    t.same(r.statuses, { 200: 300 }, balance)
    const slow = (r.backends.a ?? 0) / 300
    // Round-robin would give it 1/3; being 150 ms slower than the others it should get well under that.
    t.ok(slow < 0.15, `${balance}: slow backend got ${(slow * 100).toFixed(1)}% of traffic`)
  }
})
