import t, { type Test } from 'tap'
import { RedisStore } from '../../src/stores/redis-store.ts'
import { startGateway } from '../helpers/gateway.ts'
import { headerValues, rawRequest } from '../helpers/raw-http.ts'
import { redisWithClient } from '../helpers/redis.ts'
import { sharedStoreConfig, storeUp } from '../helpers/shared-cache-store.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { eventually } from './store-cases.ts'

// A tag's set is `tag:{<tag>}`, its braces the Redis Cluster hash tag. `{` and `}` in a tag were
// written `_`: `/api/get{user}info` and `/api/get_user_info` shared one set, and an invalidation of
// one took the other's entries out of it, so that the next invalidation of the other missed them.
const { redis, raw } = await redisWithClient(t)

async function upStore (t: Test): Promise<RedisStore> {
  const store = new RedisStore('test', { url: redis.url, keyPrefix: 'names:', connectTimeout: 1_000, commandTimeout: 2_000 }, { state () {}, failed () {}, command () {} })
  t.teardown(() => store.close())
  t.ok(await until(() => store.snapshot().state === 'up'), 'the store connected')
  return store
}

t.test('gateway on Redis: invalidations of /api/get{user}info and /api/get_user_info each reach their own entries', async t => {
  let n = 0
  const up = await startUpstream((req, res) => {
    req.resume()
    const body = `${req.method as string} ${req.url as string} #${++n}`
    res.writeHead(200, { ...(req.method === 'GET' ? { 'cache-control': 'max-age=600' } : {}), 'content-length': Buffer.byteLength(body) }).end(body)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(sharedStoreConfig(redis.url, up.url, 'gw-names:'))
  t.teardown(() => gw.close())
  t.ok(await storeUp(gw.adminUrl as string))
  const port = Number(new URL(gw.url).port)
  // On a socket of its own: undici would send `{` percent-encoded.
  const send = async (method: string, path: string) => {
    const res = await rawRequest(port, [`${method} ${path} HTTP/1.1`, 'Host: api.example.com', 'Content-Length: 0', 'Connection: close'])
    return { status: res.status, cacheStatus: headerValues(res, 'cache-status').join(', ') }
  }
  const hit = async (path: string) => (await send('GET', path)).cacheStatus.startsWith('Portcullis; hit')
  for (const path of ['/api/get_user_info', '/api/get{user}info']) {
    t.match((await send('GET', path)).cacheStatus, /stored/)
    t.equal(await eventually(() => hit(path), true), true, `${path} stored`)
  }
  t.equal((await send('POST', '/api/get{user}info')).status, 200)
  t.equal(await eventually(() => hit('/api/get{user}info'), false), false, 'the POSTed URL invalidated')
  t.ok(await hit('/api/get_user_info'), 'the other kept')
  t.equal((await send('POST', '/api/get_user_info')).status, 200)
  t.equal(await eventually(() => hit('/api/get_user_info'), false), false, 'then invalidated by its own POST: still in its tag\'s set')
})

t.test('store: tags with braces or a backslash get sets of their own; the others keep their set\'s name', async t => {
  const store = await upStore(t)
  const tags = ['u:h/a{b}', 'u:h/a_b_', 'u:h/a\\7Bb\\7D', 's:x}', 's:x\\7D']
  for (const [i, tag] of tags.entries()) await store.set(`k${i}`, 'v', { tags: [tag] })
  t.equal(await raw.scard('names:tag:{u:h/a\\7Bb\\7D}'), 1, '`{` and `}` escaped')
  t.equal(await raw.scard('names:tag:{u:h/a_b_}'), 1, 'a tag without them: tag:{<tag>}, as earlier versions named it')
  t.equal(await raw.scard('names:tag:{u:h/a\\5C7Bb\\5C7D}'), 1, '`\\` escaped too: no tag is written as another')
  for (const [i, tag] of tags.entries()) {
    t.equal(await store.deleteTag(tag), 1, `${tag}: its own key only`)
    t.same(await Promise.all(tags.map((_, j) => store.get(`k${j}`).then(v => v !== undefined))), tags.map((_, j) => j > i), 'the others kept')
  }
})

t.test('store: a set written by an earlier version, for a tag without braces, is still the tag\'s', async t => {
  const store = await upStore(t)
  await raw.set('names:old', 'v')
  await raw.set('names:tag:{}names:old', JSON.stringify(['s:release-1']))
  await raw.sadd('names:tag:{s:release-1}', 'names:old')
  t.equal(await store.deleteTag('s:release-1'), 1)
  t.equal(await raw.exists('names:old'), 0)
})
