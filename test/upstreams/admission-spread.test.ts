import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startBackends } from './backends.ts'

// A request does not queue behind a full target while another has a free slot, and a slot freed on
// a fast target takes a request queued on a slow one (nginx skips a peer at max_conns).

for (const balance of ['round-robin', 'least-connections', 'p2c-ewma']) {
  t.test(`${balance}: 8 concurrent requests, a slow and a fast target with one connection each: the fast one takes all it can`, async t => {
    const [slow, fast] = await startBackends(t, 2)
    slow!.delayMs = 3_000
    const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${slow!.url}" }, { url: "${fast!.url}" } ]
    balance: ${balance}
    connections: 1
    queue: { max: 100, timeout: 10s }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
    t.teardown(() => gw.close())
    // The backends in the order they answered: the order, not the time taken, tells a request that waited for the slow one.
    const answered: string[] = []
    const statuses = await Promise.all(Array.from({ length: 8 }, async () => {
      const res = await request(`${gw.url}/x`)
      answered.push(((await res.body.json()) as { backend: string }).backend)
      return res.statusCode
    }))
    t.same(statuses, Array(8).fill(200), 'no 503 upstream_busy')
    t.ok(slow!.hits <= 1, `the slow target got ${slow!.hits} (at most the first)`)
    // One queued behind the slow one would be answered after it (by either target). Seven fast answers take far less than 3 s, even on a busy machine.
    t.notOk(answered.slice(0, -1).includes(slow!.name), `every other request answered before the slow one: ${answered.join(' ')}`)
  })
}

t.test('consistent-hash: a keyed request stays with its full target (it queues there)', async t => {
  const [a, b] = await startBackends(t, 2)
  a!.delayMs = b!.delayMs = 300
  const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${a!.url}" }, { url: "${b!.url}" } ]
    balance: consistent-hash
    hashOn: { header: x-key }
    connections: 1
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  const backends = await Promise.all(Array.from({ length: 4 }, async () => {
    const res = await request(`${gw.url}/x`, { headers: { 'x-key': 'k1' } })
    return ((await res.body.json()) as { backend: string }).backend
  }))
  t.equal(new Set(backends).size, 1, `one target for one key: ${backends.join(', ')}`)
})
