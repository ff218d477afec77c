import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { StoreRegistry, type StoreConfigs } from '../../src/stores/registry.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { redisWithClient } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { startFromFile } from '../reload/helpers.ts'
import { countAt, otherClients, writeCounterPlugin } from './counter-plugin.ts'

// A store was known by the JSON of its settings as written: the same settings in another key
// order made a new, empty store on reload (counters reset, a new Redis connection).

const { redis, raw } = await redisWithClient(t)

const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
t.teardown(() => up.close())

const yaml = (memory: string, shared: string) => `
server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./hit-counter.ts ]
stores:
  m: ${memory}
  r: ${shared}
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: m, match: { path: /m }, upstream: up, plugins: { hit-counter: { store: m, key: a } } }
  - { name: r, match: { path: /r }, upstream: up, plugins: { hit-counter: { store: r, key: a } } }
`
const MEMORY = '{ type: memory, maxEntries: 1000 }'
const REDIS = `{ type: redis, url: "${redis.url}", keyPrefix: "ro:", commandTimeout: 2s }`

const dir = t.testdir({ 'gateway.yaml': yaml(MEMORY, REDIS) })
const file = join(dir, 'gateway.yaml')
writeCounterPlugin(dir)
const gw = await startFromFile(file)
t.teardown(() => gw.close())

const count = (path: string) => countAt(`${gw.url}${path}`)

const clients = () => otherClients(raw)

t.test('a reload that only reorders a store\'s keys keeps the store: counters go on, the same Redis connection', async t => {
  t.equal(await count('/m'), '1')
  t.equal(await count('/r'), '1')
  const before = await clients()
  t.equal(before.length, 1, 'one connection for the Redis store')
  writeFileSync(file, yaml('{ maxEntries: 1000, type: memory }', `{ commandTimeout: 2s, keyPrefix: "ro:", url: "${redis.url}", type: redis }`))
  t.equal((await gw.reloader.reload('signal')).result, 'success')
  t.equal(await count('/m'), '2', 'the memory store kept its contents')
  t.equal(await count('/r'), '2')
  t.same(await clients(), before, 'CLIENT LIST: the same client id')
  t.equal(gw.logs.filter(l => l.msg === 'store is up').length, 1, 'connected once')

  // What the test tells apart: a changed setting is a new, empty store.
  writeFileSync(file, yaml('{ maxEntries: 2000, type: memory }', REDIS))
  t.equal((await gw.reloader.reload('signal')).result, 'success')
  t.equal(await count('/m'), '1', 'another maxEntries: a new memory store')
})

t.test('keys are compared in any order at every depth (a Redis store\'s tls)', async t => {
  const registry = new StoreRegistry(memoryLogger().log)
  // Never connects (nothing listens there): only which store each config gets matters.
  const store = (tls: Record<string, unknown>) => ({ r: { type: 'redis', url: 'redis://127.0.0.1:1', tls } }) as unknown as StoreConfigs
  const first = registry.acquire(store({ servername: 'redis.internal', rejectUnauthorized: false }))
  const second = registry.acquire(store({ rejectUnauthorized: false, servername: 'redis.internal' }))
  const other = registry.acquire(store({ rejectUnauthorized: true, servername: 'redis.internal' }))
  t.equal(second.get('r'), first.get('r'), 'the same store')
  t.not(other.get('r'), first.get('r'), 'another rejectUnauthorized: another store')
  await Promise.all([first.release(), second.release(), other.release()])
})
