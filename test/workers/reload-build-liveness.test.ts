import t from 'tap'
import { request } from 'undici'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { namedUpstream } from '../reload/helpers.ts'
import { startCluster } from './helpers.ts'

// Heartbeats every 150 ms: a worker silent for 750 ms would be unresponsive.
const HEARTBEAT_MS = 150

t.test('workers: a reload whose build blocks every worker\'s event loop at once leaves /healthz and /readyz at 200', async t => {
  // A build that holds the event loop for 2 s, as a very large config's does (thousands of routes).
  const block = writeUserPlugin(t.testdir({}), 'block', 10, '(() => { const end = performance.now() + 2_000; while (performance.now() < end); return {} })()')
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
  t.same([...seen], ['200 200'], 'alive and ready all along')
  t.notOk(cli.lines.slice(since).some(l => l.msg === 'worker unresponsive: not counted as serving'), 'no worker judged unresponsive')
})
