import t from 'tap'
import { stopCli } from '../../test/helpers/cli.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startCluster } from '../../test/workers/helpers.ts'

// Each worker keeps its own counters in a memory store: N workers allow N × a limit's requests.
const WARNING = /^rate-limit: counters are kept per worker in memory store/
const up = await startUpstream()
t.teardown(() => up.close())
const limit = (store: string) => `{ store: ${store}, limits: [ { name: n, requests: 10, window: 1m } ] }`
const routes = (extra = '') => `  - { name: mem, match: { path: /mem }, upstream: up, plugins: { rate-limit: ${limit('memory')} } }
  - { name: mem2, match: { path: /mem2 }, upstream: up, plugins: { rate-limit: ${limit('memory')} } }
  - { name: shared, match: { path: /shared }, upstream: up, plugins: { rate-limit: ${limit('shared')} } }
${extra}`

t.test('workers: counters in a memory store are warned about once, at start and at each reload; in a Redis one they are not', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const { cli, reload } = await startCluster(t, `  up: { targets: [ { url: "${up.url}" } ] }`, routes(),
    { extra: `stores:\n  shared: { type: redis, url: "${redis.url}" }` })
  t.match(await cli.waitForLine(l => WARNING.test(String(l.msg)), 20_000), { level: 40, worker: 0, store: 'memory', workers: 2 })
  t.match(await reload(routes('  - { name: other, match: { path: /other }, upstream: up }')), { result: 'success' })
  // Every line is written by the time the processes have exited.
  t.equal(await stopCli(cli), 0)
  const warnings = cli.lines.filter(l => WARNING.test(String(l.msg)))
  t.equal(warnings.length, 2, 'one at start, one at the reload: not one per route')
  t.ok(warnings.every(l => l.worker === 0), 'by the first worker only')
  t.ok(warnings.every(l => l.store === 'memory'), 'none for the Redis store')
})

t.test('one process: no warning', async t => {
  const gw = await startGateway(`upstreams:\n  up: { targets: [ { url: "${up.url}" } ] }\nroutes:\n${routes().split('\n')[0] as string}\n`)
  t.teardown(() => gw.close())
  t.notOk(gw.logs.some(l => WARNING.test(String(l.msg))))
})
