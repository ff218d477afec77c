import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { StoreRegistry, type StoreConfigs } from '../../src/stores/registry.ts'
import { memoryLogger } from '../helpers/gateway.ts'
import { redisWithClient } from '../helpers/redis.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { startFromFile, waitFor } from '../reload/helpers.ts'
import { otherClients } from './counter-plugin.ts'

// A store was known by its settings as written: a default written out (`maxEntries: 100000`), a
// size or duration in other words (`64MiB` and 67108864, `1s` and `1000ms`) made a new store on
// reload: rate-limit counters reset, the memory cache emptied, a new Redis connection.

const { redis, raw } = await redisWithClient(t)

const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
t.teardown(() => up.close())

// No local pre-check: every 429 is the store's counter answering.
const limit = (store: string) => `rate-limit: { store: ${store}, localPrecheck: false, by: [ ip ], limits: [ { name: h, requests: 3, window: 1h } ] }`
const yaml = (memory: string | undefined, shared: string) => `
server:
  listen: { host: 127.0.0.1, port: 0 }
stores:
${memory === undefined ? '' : `  memory: ${memory}\n`}  r: ${shared}
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: m, match: { path: /m }, upstream: up, plugins: { ${limit('memory')} } }
  - { name: r, match: { path: /r }, upstream: up, plugins: { ${limit('r')} } }
`
const REDIS = `{ type: redis, url: "${redis.url}", commandTimeout: 1s }`

const dir = t.testdir({ 'gateway.yaml': yaml(undefined, REDIS) })
const file = join(dir, 'gateway.yaml')
const gw = await startFromFile(file)
t.teardown(() => gw.close())

const status = async (path: string): Promise<number> => {
  const res = await request(`${gw.url}${path}`)
  await res.body.dump()
  return res.statusCode
}
const statuses = async (path: string, n: number): Promise<number[]> => {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(await status(path))
  return out
}
const reload = async (memory: string | undefined, shared: string) => {
  writeFileSync(file, yaml(memory, shared))
  return (await gw.reloader.reload('signal')).result
}

t.test('the implicit memory store: the same settings in other words keep its counters', async t => {
  t.same(await statuses('/m', 4), [200, 200, 200, 429], '3 an hour, then 429')
  for (const memory of ['{ type: memory }', '{ type: memory, maxEntries: 100000 }', '{ maxBytes: 64MiB, type: memory }', '{ type: memory, maxBytes: 67108864 }']) {
    t.equal(await reload(memory, REDIS), 'success')
    t.equal(await status('/m'), 429, `still 429 after stores.memory: ${memory}`)
  }
  // What the test tells apart: a real change is a new, empty store.
  t.equal(await reload('{ type: memory, maxBytes: 32MiB }', REDIS), 'success')
  t.same(await statuses('/m', 4), [200, 200, 200, 429], 'another maxBytes: a new store, a fresh limit')
})

t.test('a Redis store: durations in other words, defaults written out keep its connection', async t => {
  t.same(await statuses('/r', 4), [200, 200, 200, 429], '3 an hour, then 429')
  const before = await otherClients(raw)
  t.equal(before.length, 1, 'one connection for the store')
  const same = [
    `{ type: redis, url: "${redis.url}", commandTimeout: 1000ms }`,
    `{ commandTimeout: 1000, connectTimeout: 2s, keyPrefix: "pc:", db: 0, tls: false, url: "${redis.url}", type: redis }`
  ]
  for (const shared of same) {
    t.equal(await reload(undefined, shared), 'success')
    t.equal(await status('/r'), 429, `still 429 after stores.r: ${shared}`)
    t.same(await otherClients(raw), before, 'CLIENT LIST: the same client id')
  }
  t.equal(gw.logs.filter(l => l.msg === 'store is up' && l.store === 'r').length, 1, 'connected once')

  // A real change: another URL (database 1) is a new store, with a connection of its own.
  t.equal(await reload(undefined, `{ type: redis, url: "${redis.url}/1", commandTimeout: 1s }`), 'success')
  t.same(await statuses('/r', 4), [200, 200, 200, 429], 'another url: a new store, a fresh limit')
  const after = await waitFor(async () => { const now = await otherClients(raw); return now.length === 1 ? now : undefined })
  t.equal(after?.length, 1, 'the old connection closed')
  t.not(after?.[0], before[0], 'a new connection')
})

t.test('tls written as true, {} or with rejectUnauthorized: true is one store', async t => {
  const registry = new StoreRegistry(memoryLogger().log)
  // Never connects (nothing listens there): only which store each config gets matters.
  const store = (tls: unknown) => ({ r: { type: 'redis', url: 'redis://127.0.0.1:1', tls } }) as unknown as StoreConfigs
  const leases = [true, {}, { rejectUnauthorized: true }, { rejectUnauthorized: false }].map(tls => registry.acquire(store(tls)))
  const [first, ...rest] = leases.map(l => l.get('r'))
  t.equal(rest[0], first)
  t.equal(rest[1], first)
  t.not(rest[2], first, 'rejectUnauthorized: false is another store')
  await Promise.all(leases.map(l => l.release()))
})
