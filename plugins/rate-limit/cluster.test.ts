import t from 'tap'
import { request } from 'undici'
import { startCluster } from '../../test/helpers/redis.ts'
import { rateLimitCases } from '../../test/helpers/rate-limit-cases.ts'
import { gateway, limitedRoute, send, setup } from '../../test/helpers/rate-limit.ts'
import { until } from '../../test/helpers/wait.ts'

// Redis Cluster, three masters: a request's keys share a hash tag, so its one script runs on one node.
const cluster = await startCluster(3)
t.teardown(() => cluster.close())
const seeds = cluster.nodes.map(n => `"${n.address}"`).join(', ')
let n = 0
const stores = () => `stores:\n  cl: { type: redis, cluster: [ ${seeds} ], keyPrefix: "c${++n}:", commandTimeout: 1s }`

rateLimitCases(t, () => ({ stores: stores(), name: 'cl', cluster: true }))

t.test('one round trip per request, keys spread over the nodes', async t => {
  const s = await setup(t)
  const gw = await gateway(s, `${stores()}
routes:
${limitedRoute('r', '/*', `{ store: cl, by: [ "header:x-k" ], limits: [ { name: a, requests: 2, window: 1h }, { name: b, requests: 1000, window: 1m, algorithm: token-bucket, by: [ "header:x-k", route ] } ] }`)}`)
  t.teardown(() => gw.close())
  const sent = new Map<number, string[]>()
  for (const node of cluster.nodes) {
    const monitor = await node.monitor()
    t.teardown(() => monitor.close())
    sent.set(node.port, monitor.commands)
  }
  const keys = Array.from({ length: 12 }, (_, i) => `key-${i}`)
  for (const k of keys) t.equal((await request(`${gw.url}/`, { headers: { 'x-k': k } })).statusCode, 200)
  for (const node of cluster.nodes) await node.cli('PING')
  t.ok(await until(() => [...sent.values()].every(s => s.includes('ping'))), 'each MONITOR has seen what was sent before')
  const data = [...sent.values()].map(s => s.filter(c => !['ping', 'cluster', 'info', 'command'].includes(c)))
  // ioredis sends EVAL the first time it meets a node (which loads the script there), then EVALSHA.
  t.same(data.flat().map(c => c === 'eval' ? 'evalsha' : c), Array(keys.length).fill('evalsha'), 'twelve requests, two limits each: twelve script calls in all, nothing else')
  t.ok(data.every(d => d.filter(c => c === 'eval').length <= 1), 'at most one EVAL per node')
  t.ok(data.filter(d => d.length > 0).length >= 2, `keys of different clients land on different nodes (${data.map(d => d.length).join('/')})`)
  t.same([(await send(`${gw.url}/`, { 'x-k': 'key-0' })).status, (await send(`${gw.url}/`, { 'x-k': 'key-0' })).status], [200, 429], 'and the limits hold')
})
