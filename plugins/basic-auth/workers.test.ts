import t from 'tap'
import { stopCli } from '../../test/helpers/cli.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startCluster } from '../../test/workers/helpers.ts'
import { hashPassword } from './password-hash.ts'

// Each worker counts failed password checks in its own memory: N workers allow N × limit an address.
const WARNING = /^basic-auth: failed password checks are counted per worker/
const HASH = await hashPassword('right-password', { ln: 10, r: 1, p: 1 })
const up = await startUpstream()
t.teardown(() => up.close())
const consumers = `consumers:\n  - { id: alice, credentials: { basic-auth: { username: alice, password: "${HASH}" } } }`
const routes = (extra = '') => `  - { name: mem, match: { path: /mem }, upstream: up, plugins: { basic-auth: {} } }
  - { name: shared, match: { path: /shared }, upstream: up, plugins: { basic-auth: { failures: { store: shared } } } }
  - { name: off, match: { path: /off }, upstream: up, plugins: { basic-auth: { failures: false } } }
${extra}`

t.test('workers: a memory failure count is warned about once, at start and at each reload; a Redis one is not', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const { cli, reload } = await startCluster(t, `  up: { targets: [ { url: "${up.url}" } ] }`, routes(),
    { extra: `stores:\n  shared: { type: redis, url: "${redis.url}" }\n${consumers}` })
  t.match(await cli.waitForLine(l => WARNING.test(String(l.msg)), 20_000), { level: 40, worker: 0, store: 'memory', limit: 20, workers: 2 })
  t.match(await reload(routes('  - { name: other, match: { path: /other }, upstream: up }')), { result: 'success' })
  // Every line is written by the time the processes have exited.
  t.equal(await stopCli(cli), 0)
  const warnings = cli.lines.filter(l => WARNING.test(String(l.msg)))
  t.equal(warnings.length, 2, 'one at start, one at the reload')
  t.ok(warnings.every(l => l.worker === 0), 'by the first worker only')
  t.ok(warnings.every(l => l.store === 'memory'), 'none for the Redis store')
})

t.test('one process: no warning', async t => {
  const gw = await startGateway(`${consumers}\nupstreams:\n  up: { targets: [ { url: "${up.url}" } ] }\nroutes:\n${routes().split('\n')[0] as string}\n`)
  t.teardown(() => gw.close())
  t.notOk(gw.logs.some(l => WARNING.test(String(l.msg))))
})
