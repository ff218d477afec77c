import t from 'tap'
import { request } from 'undici'
import { deadPort } from '../helpers/upstream.ts'
import { namedUpstream, waitFor } from '../reload/helpers.ts'
import { fresh, startCluster } from './helpers.ts'

interface Target { url: string, healthy: boolean, ejectedUntil: string | null, breaker: string | null, connections: { open: number } }
const upstreams = async (admin: string) => (await (await request(`${admin}/upstreams`)).body.json() as { upstreams: Array<{ name: string, targets: Target[] }> }).upstreams

t.test('workers: GET /upstreams shows what the workers learned from traffic', async t => {
  const good = await namedUpstream('good')
  const dead = `http://127.0.0.1:${await deadPort()}` // refuses connections
  t.teardown(() => good.close())
  const { cli, workers, url, admin } = await startCluster(t, `  pool:
    targets: [ { url: "${good.url}" }, { url: "${dead}" } ]
    passive: { consecutiveFailures: 1 }
    circuitBreaker: { minRequests: 1 }`, '  - { name: api, match: { path: /api }, upstream: pool }',
  // A stuck worker is waited for 5 s by default: 1 s here.
  { env: { PORTCULLIS_WORKER_QUERY_TIMEOUT_MS: '1000' } })

  // Only the workers carry traffic: each ejects the dead target on its first failure (and retries on the good one).
  t.same(new Set(await fresh(`${url}/api`, 20)), new Set(['200 good']))
  const ejected = (pid: number) => cli.lines.some(l => l.msg === 'target ejected after consecutive failures' && l.pid === pid)
  t.ok(await waitFor(() => workers.every(ejected) ? true : undefined), 'both workers ejected it')

  const [g, d] = (await upstreams(admin)).find(u => u.name === 'pool')?.targets ?? []
  t.match(d, { url: dead, healthy: false, down: ['ejected', 'breaker-open'], checksPassing: true, ejectedUntil: String, breaker: 'open' }, 'the dead target shows ejected, its breaker open: not healthy')
  t.ok(Date.parse(String(d?.ejectedUntil)) > Date.now(), 'until some time still to come')
  t.match(g, { url: good.url, ejectedUntil: null, breaker: 'closed' })
  t.equal(g?.connections.open, 2, 'connections are summed over the workers (one kept alive each)')

  // A worker that cannot answer only delays the answer, which then holds what the others know.
  process.kill(workers[0] as number, 'SIGSTOP')
  try {
    const asked = performance.now()
    const [, stuck] = (await upstreams(admin)).find(u => u.name === 'pool')?.targets ?? []
    const ms = performance.now() - asked
    t.ok(ms >= 1_000 && ms < 4_000, `answered despite a stopped worker, after waiting 1 s for it (${Math.round(ms)} ms)`)
    t.match(stuck, { url: dead, ejectedUntil: String })
  } finally {
    process.kill(workers[0] as number, 'SIGCONT')
  }
})
