import t from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { redisWithClient } from '../../test/helpers/redis.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { sharedStoreConfig, storeUp } from '../../test/helpers/shared-cache-store.ts'

// What a shared Redis may hold besides what the gateway wrote: values of the wrong shape, cut
// short, tag records that are not ours, keys that collide. A miss each time, never a 500.
const { redis, raw } = await redisWithClient(t)

let n = 0
const up = await startUpstream((req, res) => {
  const user = req.headers['x-user']
  const body = `${req.url as string} #${++n}${user === undefined ? '' : ` for ${String(user)}`}`
  const vary = req.url?.startsWith('/v') === true ? { vary: user === undefined ? 'Accept-Language' : 'Accept-Language, X-User' } : undefined
  res.writeHead(200, { 'cache-control': 'public, max-age=600', 'surrogate-key': 'tagged', 'content-length': Buffer.byteLength(body), ...vary }).end(body)
})
t.teardown(() => up.close())

const PREFIX = 'ent:'
const gw: TestGateway = await startGateway(`${sharedStoreConfig(redis.url, up.url, PREFIX)}logging: { level: warn }\n`)
t.teardown(() => gw.close())
t.ok(await storeUp(gw.adminUrl as string))

const get = async (path: string, headers: Record<string, string> = {}) => {
  const res = await request(`${gw.url}${path}`, { headers: { host: 'api.example.com', ...headers } })
  return { status: res.statusCode, cacheStatus: String(res.headers['cache-status']), body: await res.body.text() }
}

/** A key as Redis holds it (`key`: the store's), once the gateway has written it. */
async function written (key: string): Promise<string> {
  for (let i = 0; i < 250; i++) {
    if (await raw.exists(PREFIX + key) === 1) return PREFIX + key
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${key} not written within 5 s`)
}
/** Once the fetch held under `lock` (a key as Redis holds it) is given back. */
async function released (lock: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await raw.exists(lock) === 0) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`${lock} still held after 5 s`)
}
/** The primary key of a path on the route `r` for https://api.example.com (the gateway's forwarded proto is http). */
const primaryOf = (path: string) => `c:r:${path}?#api.example.com|http|`

/** A value framed as the cache frames it: 4-byte length of the JSON head, the head, the body. */
const frame = (head: unknown, body: Buffer | string = '') => {
  const json = Buffer.from(JSON.stringify(head))
  const len = Buffer.alloc(4)
  len.writeUInt32BE(json.length)
  return Buffer.concat([len, json, Buffer.from(body)])
}
const headOf = (value: Buffer) => JSON.parse(value.subarray(4, 4 + value.readUInt32BE(0)).toString()) as Record<string, unknown>

const corrupt = () => metricValue(gw.adminUrl as string, 'portcullis_cache_corrupt_entries_total{route="r"}')

t.test('a value whose head has the wrong shape, or whose body was cut, is a miss: dropped, counted, fetched and stored again', async t => {
  await get('/e')
  const key = await written(primaryOf('/e'))
  const good = await raw.getBuffer(key) as Buffer
  const head = headOf(good)
  const body = good.subarray(4 + good.readUInt32BE(0))
  const cases: Record<string, Buffer> = {
    'an empty object': frame({}),
    'an array': frame([]),
    'status "abc"': frame({ ...head, status: 'abc' }, body),
    'status 99': frame({ ...head, status: 99 }, body),
    'headers null': frame({ ...head, headers: null }, body),
    'a header value with a line feed': frame({ ...head, headers: { 'x-a': 'a\nb' } }, body),
    'a header named __proto__': Buffer.from(frame({ ...head, headers: {} }, body).toString('latin1').replace('"headers":{}', '"headers":{"__proto__":["x"]}'), 'latin1'),
    'lifetime a string': frame({ ...head, lifetime: '600' }, body),
    'tags not a list': frame({ ...head, tags: 'tagged' }, body),
    'the body cut short': frame(head, body.subarray(0, body.length - 2)),
    'written in another format (no format, no size)': frame({ ...head, format: undefined, size: undefined }, body),
    'not even a head': Buffer.from('garbage')
  }
  let counted = await corrupt()
  for (const [name, value] of Object.entries(cases)) {
    await raw.set(key, value)
    const before = n
    const res = await get('/e')
    t.same([res.status, res.body, fresh(res.cacheStatus, 600)], [200, `/e #${before + 1}`, 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=600'], name)
    t.equal(await corrupt(), ++counted, `${name}: counted`)
    let again = await get('/e')
    for (let i = 0; i < 100 && !again.cacheStatus.includes('hit'); i++) again = await get('/e')
    t.same([again.body, /^Portcullis; hit/.test(again.cacheStatus)], [`/e #${before + 1}`, true], `${name}: stored in its place`)
  }
  t.match(await waitForLog(gw.logs, { store: 'shared', level: 40 }), {
    msg: 'cache: store "shared" held values the cache cannot read (malformed, cut short, or of another format); each was dropped and its request went upstream (logged at most every 10s)',
    error: /: c:r:\/e\?/
  })
})

t.test('a Vary marker of the wrong shape is a miss too, not a store failure', async t => {
  await get('/vm', { 'accept-language': 'en' })
  const key = await written(primaryOf('/vm'))
  const marker = await raw.getBuffer(key) as Buffer
  t.same(headOf(marker).vary, ['accept-language'])
  for (const vary of [5, null, [], [1], ['a b']]) {
    // The last fetch's writes done (its fetch given back after them): none lands on the marker written here.
    await released(`${PREFIX}f:${primaryOf('/vm')}#fetch`)
    await raw.set(key, frame({ ...headOf(marker), vary }))
    const res = await get('/vm', { 'accept-language': 'en' })
    t.same([res.status, fresh(res.cacheStatus, 600)], [200, 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=600'], `vary: ${JSON.stringify(vary)}`)
  }
})

t.test('a request whose Vary values spell out another variant\'s key never gets it', async t => {
  await get('/v1', { 'x-user': 'alice', 'accept-language': 'en' })
  t.match((await get('/v1', { 'accept-language': 'en' })).cacheStatus, /fwd=vary-miss; fwd-status=200; stored/)
  const forged = await get('/v1', { 'accept-language': 'en|h:x-user=alice' })
  t.notMatch(forged.body, /alice/)

  // Alice's variant found under the key of the plain one (a collision): its own Vary does not select this request.
  await get('/v2', { 'x-user': 'alice', 'accept-language': 'en' })
  await get('/v2', { 'accept-language': 'fr' })
  const primary = primaryOf('/v2')
  const alices = await written(`${primary}|h:accept-language=en|h:x-user=alice`)
  t.match((await raw.getBuffer(alices) as Buffer).toString(), /for alice$/)
  await raw.copy(alices, `${PREFIX}${primary}|h:accept-language=en`)
  const plain = await get('/v2', { 'accept-language': 'en' })
  t.notMatch(plain.body, /alice/, 'not served')
  t.match(plain.cacheStatus, /fwd=vary-miss/)
})

t.test('a tag record that is not ours: a purge by tag deletes what carries the tag, the store stays up', async t => {
  await get('/t1')
  await get('/t2')
  const record = await written(`tag:{}${PREFIX}${primaryOf('/t1')}`)
  await raw.set(record, '{}')
  const purged = await request(`${gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tag":"tagged"}' })
  t.equal(purged.statusCode, 200)
  t.match(await purged.body.json(), { purged: Number })
  t.match((await get('/t1')).cacheStatus, /fwd=uri-miss/, 'the entry of the unreadable record is purged')
  t.match((await get('/t2')).cacheStatus, /fwd=uri-miss/, 'and the others carrying the tag')
  const { stores } = await (await request(`${gw.adminUrl as string}/stores`)).body.json() as { stores: Array<{ name: string, state: string }> }
  t.equal(stores.find(s => s.name === 'shared')?.state, 'up')
})
