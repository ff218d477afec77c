import t from 'tap'
import { request } from 'undici'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { namedUpstream } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

// Heartbeats every 200 ms: a worker silent for 1 s is unresponsive, one silent for 6 s (not building) killed.
const HEARTBEAT_MS = 200

t.test('workers: a reload whose build blocks every worker\'s event loop at once: /readyz is 503 while none answers, /healthz stays 200 and none is killed', async t => {
  // A build that holds the event loop for 3 s, as a very large config's does (thousands of routes).
  const block = writeUserPlugin(t.testdir({}), 'block', 10, '(() => { const end = performance.now() + 3_000; while (performance.now() < end); return {} })()')
  const up = await namedUpstream('u')
  t.teardown(() => up.close())
  const { cli, admin, reload } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`, '  - { name: r, match: { path: /r }, upstream: u }',
    { loadPlugins: [block], env: { PORTCULLIS_WORKER_HEARTBEAT_MS: String(HEARTBEAT_MS) } })
  const probes = async () => `${(await request(`${admin}/healthz`)).statusCode} ${(await request(`${admin}/readyz`)).statusCode}`
  t.equal(await probes(), '200 200')

  const since = cli.lines.length
  let done = false
  const v2 = reload('  - { name: r, match: { path: /r }, upstream: u, plugins: { block: {} } }').finally(() => { done = true })
  const seen = new Set<string>()
  while (!done) seen.add(await probes())
  t.match(await v2, { result: 'success' })
  t.same([...seen].filter(s => s !== '200 200'), ['200 503'], 'alive all along; not ready while no worker answers (their requests wait)')
  t.equal(await probes(), '200 200', 'ready again once the build is over')
  t.same(cli.lines.slice(since).filter(l => l.msg === 'worker unresponsive: not counted as serving').map(l => l.building), [true, true], 'both logged unresponsive, as building')
  t.notOk(cli.lines.slice(since).some(l => l.msg === 'worker unresponsive too long; killing it'), 'none killed')
})
