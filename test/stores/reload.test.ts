import t from 'tap'
import { writeFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import { request } from 'undici'
import { redisWithClient } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { eventually } from './store-cases.ts'
import { startFromFile } from '../reload/helpers.ts'
import { countAt, otherClients, writeCounterPlugin } from './counter-plugin.ts'

const { redis, raw } = await redisWithClient(t)

// /slow answers only when the test releases it: a request held in flight across a reload.
const held: ServerResponse[] = []
const up = await startUpstream((req, res) => {
  req.resume()
  if (req.url === '/slow') held.push(res)
  else res.end('ok')
})
t.teardown(() => up.close())

const yaml = (store: string) => `
server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./hit-counter.ts ]
stores:
  shared: ${store}
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: shared, match: { path: /shared }, upstream: up, plugins: { hit-counter: { store: shared, key: a } } }
  - { name: slow, match: { path: /slow }, upstream: up, plugins: { hit-counter: { store: shared, key: a } } }
  - { name: local, match: { path: /local }, upstream: up, plugins: { hit-counter: { store: memory, key: a } } }
`
// commandTimeout 2s: a count over the default 100 ms on a loaded machine goes missing (and runs late, off by one after).
const V1 = `{ type: redis, url: "${redis.url}", keyPrefix: "v1:", commandTimeout: 2s }`
const V2 = `{ type: redis, url: "${redis.url}", keyPrefix: "v2:", commandTimeout: 2s }`

// In the project's tree (t.testdir), where the plugin file is loaded as ESM TypeScript.
const dir = t.testdir({ 'gateway.yaml': yaml(V1) })
const file = join(dir, 'gateway.yaml')
writeCounterPlugin(dir)
const gw = await startFromFile(file)
t.teardown(() => gw.close())

const count = (path: string) => countAt(`${gw.url}${path}`)

const clients = () => otherClients(raw)

t.test('20 reloads with an unchanged store: the same Redis connections; counters keep counting', async t => {
  t.equal(await count('/shared'), '1')
  t.equal(await count('/local'), '1')
  const before = await clients()
  t.equal(before.length, 1, 'one connection for the store')
  for (let i = 0; i < 20; i++) {
    t.equal((await gw.reloader.reload('signal')).result, 'success')
    // Only the last reload's runtime serves; each earlier one is retired as soon as it is idle.
    t.equal(await count('/shared'), String(i + 2))
  }
  t.same(await clients(), before, 'CLIENT LIST: the same client ids before and after')
  t.equal(await count('/local'), '2', 'the memory store kept its contents across the reloads')
  t.equal(gw.logs.filter(l => l.msg === 'store is up').length, 1, 'connected once')
})

t.test('a changed store is reconnected; the old connection closes once the old runtime has drained', async t => {
  const before = await clients()
  const inFlight = request(`${gw.url}/slow`)
  t.ok(await until(() => held.length === 1), 'a request is in flight on the old runtime')
  writeFileSync(file, yaml(V2))
  t.equal((await gw.reloader.reload('signal')).result, 'success')
  t.equal(await count('/shared'), '1', 'the new store counts under the new keyPrefix')
  const during = await clients()
  t.equal(during.length, 2, 'the old connection is kept while the old runtime drains')
  t.ok(before.every(id => during.includes(id)))
  ;(held.shift() as ServerResponse).end('late')
  const res = await inFlight
  await res.body.text()
  t.equal(res.headers['x-count'], '22', 'the in-flight request finished on the old store (v1:, 21 hits before)')
  const fresh = during.filter(id => !before.includes(id))
  t.equal(await eventually(async () => (await clients()).join(','), fresh.join(',')), fresh.join(','), 'then the old connection is closed: only the new one is left')
  t.equal(await raw.get('v1:hits:{a}'), '22')
  t.equal(await raw.get('v2:hits:{a}'), '1')
  t.equal(await count('/local'), '3', 'the memory store (unchanged) kept its contents')
})
