import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startFromFile } from '../../test/reload/helpers.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { entryStored, numberingUpstream } from '../../test/helpers/shared-cache-store.ts'

// A route's cache switched to another store and back: what the first store still holds may have
// missed the purges and invalidations made meanwhile (they went to the other store, or nowhere).

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())
const up = await numberingUpstream()
t.teardown(() => up.close())

/** `plugins` of the route r: a cache on a store, or none. */
const yaml = (plugins: string, keyPrefix = 'v1:', commandTimeout = '2s') => `
server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  shared: { type: redis, url: "${redis.url}", keyPrefix: "${keyPrefix}", commandTimeout: ${commandTimeout} }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: ${plugins} }
`
const MEMORY = '{ cache: { store: memory } }'
const SHARED = '{ cache: { store: shared } }'

const file = join(t.testdir({}), 'gateway.yaml')
writeFileSync(file, yaml(MEMORY))
const gw = await startFromFile(file)
t.teardown(() => gw.close())

const reload = async (text: string) => {
  writeFileSync(file, text)
  t.equal((await gw.reloader.reload('signal')).result, 'success', 'reloaded')
}
const get = async (path: string, method = 'GET') => {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET' })
  return { status: res.statusCode, cache: String(res.headers['cache-status']), body: await res.body.text() }
}
const purgeAll = async () => {
  const res = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })
  return await res.body.json()
}

t.test('memory, then Redis, then memory again: what was deleted and purged meanwhile is not served from memory', async t => {
  const first = await get('/x')
  t.match((await get('/x')).cache, /hit/, 'stored in memory')
  await reload(yaml(SHARED))
  t.match((await get('/x')).cache, /fwd=uri-miss/, 'a miss on Redis')
  t.equal((await get('/x', 'DELETE')).status, 200)
  t.same(await purgeAll(), { purged: 0 }, 'the purge reaches Redis only (nothing left there)')
  await reload(yaml(MEMORY))
  const back = await get('/x')
  t.match(back.cache, /fwd=uri-miss/, 'a miss: the memory store\'s entry from before was dropped')
  t.not(back.body, first.body)
  t.match((await get('/x')).cache, /hit/, 'and cached again')
})

t.test('an unchanged store keeps the route\'s entries across a reload', async t => {
  await get('/kept')
  t.match((await get('/kept')).cache, /hit/)
  await reload(yaml(MEMORY) + '\n')
  t.match((await get('/kept')).cache, /hit/, 'still a hit')
})

t.test('Redis, then memory, then Redis again: what was invalidated meanwhile is not served from Redis', async t => {
  await reload(yaml(SHARED))
  await get('/y')
  await entryStored(redis, 'v1:')
  t.match((await get('/y')).cache, /hit/, 'stored in Redis')
  await reload(yaml(MEMORY))
  await get('/y', 'DELETE')
  await reload(yaml(SHARED))
  t.match((await get('/y')).cache, /fwd=uri-miss/, 'a miss: the Redis entry from before was dropped')
})

t.test('a keyPrefix changed, then changed back: the entries under the first are dropped', async t => {
  await get('/z')
  await entryStored(redis, 'v1:')
  t.match((await get('/z')).cache, /hit/)
  await reload(yaml(SHARED, 'v2:'))
  await get('/z', 'DELETE')
  const mark = gw.logs.length
  // A Redis store new in the config: the drop waits for it to connect.
  await reload(yaml(SHARED))
  t.match((await get('/z')).cache, /fwd=uri-miss/)
  t.match(gw.logs.slice(mark).filter(l => /earlier config/.test(String(l.msg))), [{ level: 30, msg: 'cache entries from an earlier config dropped: they may have missed purges', store: 'shared', dropped: Number }])
})

t.test('a Redis store whose settings changed but not where its keys live (its timeouts): the entries are kept', async t => {
  await reload(yaml(SHARED))
  await get('/v')
  await entryStored(redis, 'v1:')
  t.match((await get('/v')).cache, /hit/, 'stored in Redis')
  const mark = gw.logs.length
  await reload(yaml(SHARED, 'v1:', '1500ms'))
  t.match((await get('/v')).cache, /hit/, 'still a hit from the new store object')
  await reload(yaml(SHARED, 'v1:', '1500ms').replace('commandTimeout:', 'connectTimeout: 1s, commandTimeout:'))
  t.match((await get('/v')).cache, /hit/, 'and after a connectTimeout changed')
  t.same(gw.logs.slice(mark).filter(l => /earlier config/.test(String(l.msg))), [], 'nothing dropped')
})

t.test('a route cached, then not, then cached again: what its unsafe requests changed meanwhile is not served', async t => {
  await reload(yaml(MEMORY))
  await get('/w')
  t.match((await get('/w')).cache, /hit/)
  await reload(yaml('{}'))
  await get('/w', 'DELETE')
  await reload(yaml(MEMORY))
  t.match((await get('/w')).cache, /fwd=uri-miss/)
})
