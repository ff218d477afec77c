import type { ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { connect as h2connect } from 'node:http2'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import type { TestGateway } from '../../test/helpers/gateway.ts'
import { fresh, rig, type Handler, type Rig } from '../../test/helpers/cache-rig.ts'
import { until } from '../../test/helpers/wait.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { sfList } from '../../test/helpers/rate-limit.ts'
import { sharedWithPlugins, writeUserPlugin } from '../../test/helpers/user-plugin.ts'
import { startH2Gateway } from '../../test/helpers/http2.ts'

const send = (res: ServerResponse, status: number, headers: Record<string, string | string[]>, body = '') => {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }).end(body)
}
/** The value without this gateway's per-answer parts, for comparing Cache-Status lines. */
const cs = (h: Record<string, unknown>) => String(h['cache-status'])

t.test('a response with max-age is stored and served from the cache with Age and Cache-Status', async t => {
  const r = await rig(t, (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }, `body ${n}`))
  const first = await r.get('/a')
  t.equal(first.body, 'body 1')
  t.equal(fresh(cs(first.headers)), 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60')
  const second = await r.get('/a')
  t.equal(second.body, 'body 1')
  t.match(cs(second.headers), /^Portcullis; hit; ttl=(59|60)$/)
  t.match(second.headers.age, /^[01]$/, 'Age: seconds since stored (a slow machine may take one)')
  t.equal(second.headers['content-type'], 'text/plain')
  t.equal(second.headers['content-length'], '6')
  t.equal(r.seen.length, 1)
  const head = await r.get('/a', {}, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal(head.headers['content-length'], '6')
  t.match(cs(head.headers), /hit/)
  t.equal(r.seen.length, 1, 'HEAD answered from the stored GET')
  const headFirst = await r.get('/h', {}, 'HEAD')
  t.equal(cs(headFirst.headers), 'Portcullis; fwd=uri-miss; fwd-status=200; detail=head', 'a HEAD miss stores nothing')
  t.equal((await r.get('/h')).body, 'body 3', 'the GET after it gets the body')
})

t.test('the upstream Age counts against freshness, and Date-based apparent age too', async t => {
  const r = await rig(t, (req, res) => {
    if (req.url === '/aged') send(res, 200, { 'cache-control': 'max-age=100', age: '40' }, 'x')
    // The upstream takes 1.6 s: the response ages on its way too (RFC 9111 4.2.3 response_delay).
    else if (req.url === '/slow') setTimeout(() => send(res, 200, { 'cache-control': 'max-age=100', age: '40' }, 'x'), 1600)
    else if (req.url === '/dated') send(res, 200, { 'cache-control': 'max-age=100', date: new Date(Date.now() - 30_000).toUTCString() }, 'x')
    else send(res, 200, { 'cache-control': 'max-age=100', age: '150' }, 'x')
  })
  t.equal(fresh(cs((await r.get('/aged')).headers)), 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60')
  const hit = await r.get('/aged')
  t.match(hit.headers.age, /^4[01]$/)
  t.match(cs(hit.headers), /^Portcullis; hit; ttl=(59|60)$/)
  // 60 without the delay; 58 here, less on a machine slow to answer.
  t.match(cs((await r.get('/slow')).headers), /^Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=5[5-8]$/, '40 s of Age and 1.6 s of response delay')
  t.match((await r.get('/slow')).headers.age, /^4[1-4]$/)
  await r.get('/dated')
  const dated = await r.get('/dated')
  t.match(dated.headers.age, /^(30|31|32)$/)
  await r.get('/too-old')
  await r.get('/too-old')
  t.equal(r.seen.filter(s => s.url === '/too-old').length, 2, 'an Age beyond max-age is stale on arrival: not served')
})

t.test('a delta-seconds too large to represent counts as 2^31 (RFC 9111 1.2.2): max-age stores for it, Age makes stale', async t => {
  const huge = '9'.repeat(400) // beyond a double: parsed, it is Infinity
  const r = await rig(t, (req, res) => {
    if (req.url === '/forever') send(res, 200, { 'cache-control': `max-age=${huge}` }, 'x')
    else send(res, 200, { 'cache-control': 'max-age=60', age: huge }, 'x')
  })
  t.equal(cs((await r.get('/forever')).headers), 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=2147483648')
  t.match(cs((await r.get('/forever')).headers), /^Portcullis; hit; ttl=214748364[78]$/)
  t.equal(cs((await r.get('/ancient')).headers), 'Portcullis; fwd=uri-miss; fwd-status=200; detail=no-freshness', 'an Age of 2^31 s is stale on arrival')
  await r.get('/ancient')
  t.equal(r.seen.filter(s => s.url === '/ancient').length, 2, 'never served from the cache')
})

t.test('s-maxage over max-age over Expires', async t => {
  const r = await rig(t, (req, res) => {
    const expires = new Date(Date.now() + 500_000).toUTCString()
    if (req.url === '/s') send(res, 200, { 'cache-control': 'max-age=10, s-maxage=300', expires }, 'x')
    else if (req.url === '/m') send(res, 200, { 'cache-control': 'max-age=200', expires }, 'x')
    else if (req.url === '/e') send(res, 200, { expires, date: new Date().toUTCString() }, 'x')
    else send(res, 200, { expires: '0' }, 'x')
  })
  t.match(cs((await r.get('/s')).headers), /ttl=(299|300)$/)
  t.match(cs((await r.get('/m')).headers), /ttl=(199|200)$/)
  t.match(cs((await r.get('/e')).headers), /ttl=(499|500)$/)
  t.match(cs((await r.get('/bad-expires')).headers), /detail=no-freshness$/, 'an invalid Expires means already expired')
})

t.test('what a shared cache must not store', async t => {
  const r = await rig(t, (req, res, n) => {
    const cc: Record<string, string> = {
      '/no-store': 'no-store, max-age=60',
      '/private': 'private, max-age=60',
      '/private-body-field': 'private="content-type", max-age=60',
      '/plain': '',
      // Storable, but stale on arrival with nothing to revalidate it by: not worth keeping.
      '/max-age-0': 'max-age=0'
    }
    if (req.url === '/cookie') send(res, 200, { 'cache-control': 'max-age=60', 'set-cookie': `s=${n}` }, `cookie ${n}`)
    else if (req.url === '/public-cookie') send(res, 200, { 'cache-control': 'public, max-age=60', 'set-cookie': `s=${n}` }, `public ${n}`)
    else if (req.url === '/partial') send(res, 206, { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-0/10' }, 'p')
    else if (req.url === '/vary-star') send(res, 200, { 'cache-control': 'max-age=60', vary: '*' }, 'v')
    else if (req.url === '/302') send(res, 302, { location: '/x' }, '')
    else send(res, 200, cc[req.url as string] === '' ? {} : { 'cache-control': cc[req.url as string] as string }, `body ${n}`)
  })
  for (const [path, detail] of [['/no-store', 'uncacheable'], ['/private', 'uncacheable'], ['/private-body-field', 'uncacheable'], ['/plain', 'no-freshness'], ['/max-age-0', 'no-freshness'],
    ['/cookie', 'set-cookie'], ['/partial', 'status'], ['/vary-star', 'vary-star'], ['/302', 'status']] as const) {
    const a = await r.get(path)
    t.match(cs(a.headers), new RegExp(`^Portcullis; fwd=uri-miss; fwd-status=\\d+; detail=${detail}$`), path)
    await r.get(path)
    t.equal(r.seen.filter(s => s.url === path).length, 2, `${path} is not served from the cache`)
  }
  // public: stored, but the cookie went to the first client only.
  const first = await r.get('/public-cookie')
  t.same(first.headers['set-cookie'], 's=' + String(r.seen.length))
  const second = await r.get('/public-cookie')
  t.equal(second.body, first.body)
  t.equal(second.headers['set-cookie'], undefined, 'Set-Cookie is never served from the cache')
})

t.test('directive names in any case (RFC 9111 5.2): Private, No-Store never stored, on a 304 too; a request\'s No-Store and Only-If-Cached honoured', async t => {
  const r = await rig(t, (req, res, n) => {
    const cc: Record<string, string> = { '/private': 'max-age=60, Private', '/no-store': 'No-Store, max-age=60', '/heuristic': 'NO-STORE', '/stale': 'max-age=0' }
    if (req.headers['if-none-match'] === '"e"') send(res, 304, { etag: '"e"', 'cache-control': 'max-age=60, PRIVATE' })
    // With Last-Modified: storable by the heuristic but for its NO-STORE.
    else send(res, 200, { 'cache-control': cc[req.url as string] ?? 'max-age=60', etag: '"e"', 'last-modified': 'Mon, 01 Jan 2001 00:00:00 GMT' }, `body ${n}`)
  }, '{ requestCacheControl: honor }')
  const upstreamSaw = (path: string) => r.seen.filter(s => s.url === path).length
  for (const path of ['/private', '/no-store', '/heuristic']) {
    t.equal(cs((await r.get(path)).headers), 'Portcullis; fwd=uri-miss; fwd-status=200; detail=uncacheable', path)
    await r.get(path)
    t.equal(upstreamSaw(path), 2, `${path} is not served from the cache`)
  }
  await r.get('/stale')
  t.equal(cs((await r.get('/stale')).headers), 'Portcullis; fwd=stale; fwd-status=304; detail=uncacheable', 'a 304 saying PRIVATE')
  t.match(cs((await r.get('/stale')).headers), /^Portcullis; fwd=uri-miss/, 'dropped the entry')
  t.match(cs((await r.get('/req', { 'cache-control': 'No-Store' })).headers), /detail=no-store$/)
  const only = await r.get('/req', { 'cache-control': 'Only-If-Cached' })
  t.same([only.status, cs(only.headers)], [504, 'Portcullis; fwd=uri-miss; detail=only-if-cached'], 'a request No-Store kept nothing')
})

t.test('qualified private and no-cache: the response is stored and served without the fields they name', async t => {
  const r = await rig(t, (req, res, n) => {
    const cc = req.url === '/private' ? 'max-age=60, private="X-User, Set-Cookie"' : 'max-age=60, no-cache="x-user, set-cookie"'
    send(res, 200, { 'cache-control': cc, 'x-user': `user ${n}`, 'set-cookie': `s=${n}`, 'x-shared': 'yes' }, `body ${n}`)
  })
  for (const path of ['/private', '/no-cache']) {
    const first = await r.get(path)
    t.match(cs(first.headers), /fwd=uri-miss; fwd-status=200; stored/, path)
    t.same([first.headers['x-user'], first.headers['set-cookie']], [`user ${r.seen.length}`, `s=${r.seen.length}`], 'the client that caused it gets them all')
    const second = await r.get(path)
    t.match(cs(second.headers), /^Portcullis; hit/, 'no-cache="…" is not revalidated before use')
    t.equal(second.body, first.body)
    t.same([second.headers['x-user'], second.headers['set-cookie'], second.headers['x-shared']], [undefined, undefined, 'yes'], `${path}: the named fields withheld, the rest served`)
    t.equal(second.headers['cache-control'], first.headers['cache-control'], 'Cache-Control as sent')
  }
  t.equal(r.seen.length, 2)
})

t.test('qualified private on revalidation: the 304\'s own fields go to the client whose request revalidated, not into the entry', async t => {
  const r = await rig(t, (req, res, n) => {
    const headers = { etag: '"v1"', 'cache-control': `max-age=${n === 1 ? 0 : 60}, private="x-user, set-cookie"`, 'x-user': `user ${n}`, 'set-cookie': `s=${n}`, 'x-version': String(n) }
    if (req.headers['if-none-match'] === '"v1"') send(res, 304, headers)
    else send(res, 200, headers, 'the body')
  }, '{ requestCacheControl: honor }')
  t.equal((await r.get('/r')).headers['x-user'], 'user 1')
  const revalidated = await r.get('/r')
  t.match(cs(revalidated.headers), /fwd=stale; fwd-status=304; stored/)
  t.equal(revalidated.body, 'the body')
  t.same([revalidated.headers['x-user'], revalidated.headers['set-cookie'], revalidated.headers['x-version']], ['user 2', 's=2', '2'])
  const hit = await r.get('/r')
  t.match(cs(hit.headers), /^Portcullis; hit/)
  t.same([hit.headers['x-user'], hit.headers['set-cookie'], hit.headers['x-version']], [undefined, undefined, '2'], 'the entry has the 304\'s shared fields only')
  const conditional = await r.get('/r', { 'cache-control': 'no-cache', 'if-none-match': '"v1"' })
  t.same([conditional.status, conditional.headers['x-user'], conditional.headers['set-cookie']], [304, 'user 3', 's=3'], 'a 304 to the client carries them too')
})

t.test('must-understand (RFC 9111 5.2.2.3): no-store beside it is ignored by this cache, not by the clients', async t => {
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'no-store, must-understand, max-age=60' }, `body ${n}`))
  const first = await r.get('/mu')
  t.match(cs(first.headers), /fwd=uri-miss; fwd-status=200; stored/)
  const second = await r.get('/mu')
  t.match(cs(second.headers), /^Portcullis; hit/)
  t.equal(second.body, first.body)
  t.equal(second.headers['cache-control'], 'no-store, must-understand, max-age=60', 'passed on as sent: caches further down decide for themselves')
  t.equal(r.seen.length, 1)
})

t.test('Authorization: skipped unless cacheAuthorized; then stored only with public, s-maxage or must-revalidate', async t => {
  const handler: Handler = (req, res, n) => {
    const cc = req.url === '/public' ? 'public, max-age=60' : req.url === '/smax' ? 's-maxage=60' : req.url === '/mr' ? 'must-revalidate, max-age=60' : 'max-age=60'
    send(res, 200, { 'cache-control': cc }, `for ${String(req.headers.authorization)} ${n}`)
  }
  const off = await rig(t, handler)
  const a = await off.get('/public', { authorization: 'Bearer alice' })
  t.equal(cs(a.headers), 'Portcullis; fwd=bypass; detail=credentials')
  const anon = await off.get('/public')
  t.equal(anon.body, 'for undefined 2', 'an authorized response is not served to another client')

  const on = await rig(t, handler, '{ cacheAuthorized: true }')
  for (const path of ['/public', '/smax', '/mr']) {
    await on.get(path, { authorization: 'Bearer alice' })
    t.match(cs((await on.get(path, { authorization: 'Bearer alice' })).headers), /hit/, `${path} stored`)
  }
  const plain = await on.get('/plain', { authorization: 'Bearer alice' })
  t.match(cs(plain.headers), /detail=uncacheable/)
  const bob = await on.get('/plain', { authorization: 'Bearer bob' })
  t.match(bob.body, /^for Bearer bob/, 'an authorized answer without public is never served to another client')
})

const KEYS = { alice: 'alice-key-0123456789', bob: 'bob-key-0123456789' }
const CONSUMERS = `consumers:
  - { id: alice, credentials: { key-auth: { keys: [ "${KEYS.alice}" ] } } }
  - { id: bob, credentials: { key-auth: { keys: [ "${KEYS.bob}" ] } } }
  - { id: guest }
plugins: { key-auth: { anonymous: guest } }`

t.test('a consumer an auth plugin identified counts as Authorization; answers are keyed on the headers the upstream got', async t => {
  // The upstream personalizes by the consumer the gateway names, and says so in Vary (or not at all, /plain).
  const handler: Handler = (req, res, n) => {
    const cc = req.url === '/plain' ? 'max-age=60' : 'public, max-age=60'
    send(res, 200, { 'cache-control': cc, ...(req.url === '/vary' ? { vary: 'X-Consumer-Id' } : {}) }, `for ${String(req.headers['x-consumer-id'])} ${n}`)
  }
  const as = (who: keyof typeof KEYS, extra: Record<string, string> = {}) => ({ 'x-api-key': KEYS[who], ...extra })

  const off = await rig(t, handler, '{}', CONSUMERS)
  t.equal(cs((await off.get('/vary', as('alice'))).headers), 'Portcullis; fwd=bypass; detail=credentials', 'by default an identified consumer skips the cache')
  t.equal((await off.get('/vary', as('bob'))).body, 'for bob 2')
  // The anonymous consumer is no one in particular: cached as any request without credentials.
  await off.get('/plain')
  const guest = await off.get('/plain')
  t.same([guest.body, /hit/.test(cs(guest.headers))], ['for guest 3', true], 'the anonymous consumer is cached')

  const on = await rig(t, handler, '{ cacheAuthorized: true }', CONSUMERS)
  t.match(cs((await on.get('/vary', as('alice'))).headers), /stored/)
  t.same((await on.get('/vary', as('alice'))).body, 'for alice 1', "alice's answer is hers")
  const bob = await on.get('/vary', as('bob'))
  t.same([bob.body, fresh(cs(bob.headers))], ['for bob 2', 'Portcullis; fwd=vary-miss; fwd-status=200; stored; ttl=60'], "bob's request is another variant: the upstream got another x-consumer-id")
  const spoofed = await on.get('/vary', as('bob', { 'x-consumer-id': 'alice' }))
  t.same([spoofed.body, /hit/.test(cs(spoofed.headers))], ['for bob 2', true], 'a client naming another consumer gets its own variant')
  t.match(cs((await on.get('/plain', as('alice'))).headers), /detail=uncacheable/, 'without public, s-maxage or must-revalidate: not stored, as with Authorization')
  t.equal((await on.get('/plain', as('bob'))).body, 'for bob 4')

  // key.headers read the same headers: one entry per consumer, whatever the client sends.
  const keyed = await rig(t, handler, '{ cacheAuthorized: true, key: { headers: [x-consumer-id] } }', CONSUMERS)
  await keyed.get('/public', as('alice'))
  t.equal((await keyed.get('/public', as('bob', { 'x-consumer-id': 'alice' }))).body, 'for bob 2', 'a key header is the one the upstream got')
  t.equal((await keyed.get('/public', as('alice'))).body, 'for alice 1')
})

t.test('a plugin after the cache that changes a header the answer varies on, or its path: the answer is not stored', async t => {
  const plugin = writeUserPlugin(t.testdir({}), 'sets-user', 100,
    "{ onRequest: (req: any) => { req.headers['x-user'] = 'set-after-the-cache'; if (req.path === '/moved') req.upstreamPath = '/elsewhere' } }")
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60', vary: req.url === '/user' ? 'x-user' : 'x-other' }, `answer ${n}`),
    '{}', `loadPlugins: [ "${plugin}" ]\nplugins: { sets-user: {} }`)
  t.match(cs((await r.get('/user', { 'x-user': 'mallory' })).headers), /fwd=uri-miss; fwd-status=200; detail=vary-changed/)
  t.equal((await r.get('/user')).body, 'answer 2', 'not served from the cache')
  t.equal(r.seen[1]?.headers['x-user'], 'set-after-the-cache')
  await r.get('/other')
  t.match(cs((await r.get('/other')).headers), /hit/, 'a header the answer does not vary on may change')
  const moved = await r.get('/moved')
  t.same([moved.body, cs(moved.headers)], ['answer 4', 'Portcullis; fwd=uri-miss; fwd-status=200; detail=key-changed'], 'the path the key holds is not the one fetched')
})

t.test('a plugin before the cache that changes the upstream path: each upstream path is its own entry', async t => {
  const plugin = writeUserPlugin(t.testdir({}), 'version-path', 800,
    "{ onRequest: (req: any) => { if (req.headers['x-api-version'] === '2') req.upstreamPath = '/v2' + req.upstreamPath } }")
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${req.url as string} ${n}`),
    '{}', `loadPlugins: [ "${plugin}" ]\nplugins: { version-path: {} }`)
  await r.get('/items')
  t.equal((await r.get('/items', { 'x-api-version': '2' })).body, '/v2/items 2', 'not the answer for /items')
  t.equal((await r.get('/items', { 'x-api-version': '2' })).body, '/v2/items 2', 'stored under its own key')
  t.equal((await r.get('/items')).body, '/items 1')
  const purged = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `${r.gw.url}/items` }) })
  t.same(await purged.body.json(), { purged: 2 }, "a URL purge takes the client's URL: both")
})

t.test('a GET with a body skips the cache: its answer may depend on the body, which the key does not hold', async t => {
  // The rig's upstream reads bodies before answering: it tells them apart by their length.
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${n}: results for a ${String(req.headers['content-length'])}-byte query`))
  for (const [user, n] of [['alice', 1], ['bob', 2]] as const) {
    const res = await request(`${r.gw.url}/_search`, { method: 'GET', body: `{"user":"${user}"}`, headers: { 'content-type': 'application/json' } })
    t.same([await res.body.text(), cs(res.headers)], [`${n}: results for a ${user.length + 11}-byte query`, 'Portcullis; fwd=bypass; detail=request-body'], `${user}'s query answered for itself`)
  }
  await r.get('/_search')
  t.match(cs((await r.get('/_search')).headers), /hit/, 'without a body: cached, and not served to a request with one')
  const withBody = await request(`${r.gw.url}/_search`, { method: 'GET', body: 'x' })
  t.match(await withBody.body.text(), /^4: /)
  t.equal(await metricValue(r.gw.adminUrl as string, 'portcullis_cache_requests_total{route="r",result="bypass"}'), 3)
})

t.test('request directives: max-age, min-fresh, max-stale, no-cache, no-store, only-if-cached', async t => {
  const r = await rig(t, (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=100', age: '50', etag: `"v${n}"` }, `body ${n}`), '{ requestCacheControl: honor }')
  t.equal(cs((await r.get('/x', { 'cache-control': 'only-if-cached' })).headers), 'Portcullis; fwd=uri-miss; detail=only-if-cached')
  const only = await r.get('/x', { 'cache-control': 'only-if-cached' })
  t.equal(only.status, 504)
  t.same(JSON.parse(only.body), { error: 'not_cached', message: 'only-if-cached: no stored response fits this request' })
  await r.get('/x')
  t.match(cs((await r.get('/x', { 'cache-control': 'only-if-cached' })).headers), /hit/)
  t.match(cs((await r.get('/x', { 'cache-control': 'max-age=60' })).headers), /hit/)
  const older = await r.get('/x', { 'cache-control': 'max-age=10' })
  t.match(cs(older.headers), /^Portcullis; fwd=request; fwd-status=200; stored/)
  t.equal(r.seen.at(-1)?.headers['if-none-match'], '"v1"', 'the cache revalidates with its ETag')
  // Stored again, age 50 at arrival: min-fresh 60 > 50 left.
  t.match(cs((await r.get('/x', { 'cache-control': 'min-fresh=60' })).headers), /fwd=request/)
  t.match(cs((await r.get('/x', { 'cache-control': 'min-fresh=10' })).headers), /hit/)
  t.match(cs((await r.get('/x', { 'cache-control': 'no-cache' })).headers), /fwd=request/)
  t.match(cs((await r.get('/x', { pragma: 'no-cache' })).headers), /fwd=request/)
  const before = r.seen.length
  const nostore = await r.get('/y', { 'cache-control': 'no-store' })
  t.match(cs(nostore.headers), /detail=no-store$/)
  await r.get('/y', { 'cache-control': 'only-if-cached' })
  t.equal(r.seen.length, before + 1, 'no-store: nothing kept')
})

t.test('max-stale serves a stale entry; must-revalidate refuses it', async t => {
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': req.url === '/mr' ? 'max-age=1, must-revalidate' : 'max-age=1', age: '5', etag: `"${n}"` }, `body ${n}`), '{ requestCacheControl: honor }')
  await r.get('/s')
  const stale = await r.get('/s', { 'cache-control': 'max-stale=10' })
  t.equal(stale.body, 'body 1')
  t.match(cs(stale.headers), /^Portcullis; hit; ttl=-[45]$/)
  t.match(cs((await r.get('/s', { 'cache-control': 'max-stale=2' })).headers), /fwd=stale/)
  t.equal((await r.get('/s', { 'cache-control': 'max-stale' })).body, 'body 2', 'max-stale without a value')
  await r.get('/mr')
  const mr = await r.get('/mr', { 'cache-control': 'max-stale' })
  t.match(cs(mr.headers), /fwd=stale/)
  const metrics = await (await request(`${r.gw.adminUrl as string}/metrics`)).body.text()
  t.match(metrics, 'portcullis_cache_requests_total{route="r",result="stale"} 2\n', 'the two stale answers counted as stale')
})

t.test('revalidation: a 304 updates the stored headers and freshens the entry; client conditionals get 304', async t => {
  let version = 1
  const r = await rig(t, (req, res) => {
    const etag = `"v${version}"`
    // Age 20: the freshened entry is 20 s into its 100 s.
    if (req.headers['if-none-match'] === etag) send(res, 304, { etag, 'cache-control': 'max-age=100', age: '20', 'x-updated': 'yes', 'content-type': 'text/evil' })
    else send(res, 200, { etag, 'cache-control': 'max-age=0', 'content-type': 'text/plain', 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' }, `version ${version}`)
  }, '{ requestCacheControl: honor }')
  await r.get('/doc')
  const revalidated = await r.get('/doc')
  t.equal(revalidated.status, 200)
  t.equal(revalidated.body, 'version 1')
  t.equal(revalidated.headers['x-updated'], 'yes', 'header from the 304')
  t.equal(revalidated.headers['content-type'], 'text/plain', 'Content-Type describes the stored body: kept')
  t.match(cs(revalidated.headers), /^Portcullis; fwd=stale; fwd-status=304; stored; ttl=(79|80)$/)
  t.equal(r.seen[1]?.headers['if-none-match'], '"v1"')
  t.equal(r.seen[1]?.headers['if-modified-since'], 'Mon, 01 Jan 2024 00:00:00 GMT')
  const hit = await r.get('/doc')
  t.match(cs(hit.headers), /hit/, 'freshened by the 304')
  t.equal(hit.headers['x-updated'], 'yes')
  const cond = await r.get('/doc', { 'if-none-match': '"v1"' })
  t.equal(cond.status, 304)
  t.equal(cond.headers.etag, '"v1"')
  t.match(cs(cond.headers), /^Portcullis; hit; ttl=(79|80)$/)
  t.match(cond.headers.age, /^2[01]$/)
  const other = await r.get('/doc', { 'if-none-match': '"v0"' })
  t.equal(other.status, 200)
  const ims = await r.get('/doc', { 'if-modified-since': 'Tue, 02 Jan 2024 00:00:00 GMT' })
  t.equal(ims.status, 304)
  t.equal(r.seen.length, 2)
  version = 2
  const changed = await r.get('/doc', { 'cache-control': 'no-cache' })
  t.equal(changed.body, 'version 2', 'a 200 to the revalidation replaces the entry')
})

t.test('a client conditional on a stale entry: the cache revalidates with its own validators, then answers the client', async t => {
  const r = await rig(t, (req, res) => {
    if (req.url === '/moved') send(res, req.headers['if-none-match'] === '"m"' ? 304 : 301, { etag: '"m"', 'cache-control': 'max-age=0', location: '/c' })
    else if (req.headers['if-none-match'] === '"a"') send(res, 304, { etag: '"a"', 'cache-control': 'max-age=0', 'content-type': 'text/evil' })
    else send(res, 200, { etag: '"a"', 'cache-control': 'max-age=0' }, 'payload')
  })
  await r.get('/c')
  const cond = await r.get('/c', { 'if-none-match': '"a"' })
  t.equal(cond.status, 304)
  t.same([cond.headers.etag, cond.headers['content-type']], ['"a"', undefined], 'the cache\'s own 304: validators, no representation metadata (RFC 9110 15.4.5)')
  t.match(cs(cond.headers), /fwd=stale; fwd-status=304/)
  const full = await r.get('/c', { 'if-none-match': '"zzz"' })
  t.equal(full.status, 200)
  t.equal(full.body, 'payload')
  t.equal(r.seen[2]?.headers['if-none-match'], '"a"', 'the client\'s own validator was replaced by the stored one')
  // Preconditions apply to 2xx answers only (RFC 9110 13.2.1): a redirect is a redirect.
  await r.get('/moved')
  const moved = await r.get('/moved', { 'if-none-match': '"m"' })
  t.same([moved.status, moved.headers.location], [301, '/c'])
  t.match(cs(moved.headers), /fwd=stale; fwd-status=304/)
})

t.test('a revalidated answer has its body\'s Content-Length, and none when it is a 204', async t => {
  const r = await rig(t, (req, res) => {
    const headers = { etag: '"z"', 'cache-control': 'max-age=0' }
    if (req.headers['if-none-match'] === '"z"') send(res, 304, headers)
    else if (req.url === '/empty') res.writeHead(204, headers).end()
    else res.writeHead(200, headers).end('abcdef') // no Content-Length: sent chunked
  })
  await r.get('/chunked')
  const chunked = await r.get('/chunked')
  t.same([chunked.status, chunked.body, chunked.headers['content-length']], [200, 'abcdef', '6'])
  t.equal((await waitForLog(r.gw.logs, { msg: 'request', requestId: chunked.headers['x-request-id'] }))?.bytes, 6, 'the access log counts the stored body sent')
  t.match(cs(chunked.headers), /fwd=stale; fwd-status=304/)
  const head = await r.get('/chunked', {}, 'HEAD')
  t.same([head.status, head.body, head.headers['content-length']], [200, '', '6'], 'HEAD: the length, no body')
  t.match(cs(head.headers), /fwd=stale; fwd-status=304/)
  t.equal((await r.get('/chunked')).body, 'abcdef', 'the connection after the HEAD carries the next answer whole')
  await r.get('/empty')
  const empty = await r.get('/empty')
  t.same([empty.status, empty.headers['content-length']], [204, undefined], 'RFC 9110 8.6: no Content-Length in a 204')
  t.match(cs(empty.headers), /fwd=stale; fwd-status=304/)
})

t.test('Vary: secondary keys on normalized values; vary-miss; Vary: * is never served', async t => {
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, `${String(req.headers['accept-language'])} ${n}`))
  t.equal((await r.get('/v', { 'accept-language': 'en, fr' })).body, 'en, fr 1')
  const fr = await r.get('/v', { 'accept-language': 'fr' })
  t.equal(fr.body, 'fr 2')
  t.match(cs(fr.headers), /^Portcullis; fwd=vary-miss/)
  t.equal((await r.get('/v', { 'accept-language': 'EN,fr' })).body, 'en, fr 1', 'normalized: case and spaces of Accept-* values')
  t.equal((await r.get('/v', { 'accept-language': 'fr' })).body, 'fr 2')
  t.equal(r.seen.length, 2)
})

t.test('a successful unsafe request invalidates its URL, Location and Content-Location on the same host', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.method === 'POST') send(res, 201, { location: '/items/2', 'content-location': 'http://elsewhere.example/items/3' })
    else if (req.method === 'PUT' && req.url === '/items/6') send(res, 400, {}, 'bad request') // the first error status
    else if (req.method === 'PUT') send(res, 200, { 'content-location': '/items/4' })
    else if (req.method === 'PATCH' && req.url === '/items/7') send(res, 204, { location: 'http://[bad', 'content-location': '/items/8' })
    else if (req.method === 'PATCH') send(res, 204, {})
    else if (req.method === 'DELETE') send(res, 500, {}, 'failed')
    else send(res, 200, { 'cache-control': 'max-age=60' }, `${req.url as string} ${n}`)
  })
  for (const p of ['/items', '/items?page=2', '/items/2', '/items/3']) await r.get(p)
  await r.get('/items', {}, 'DELETE')
  t.match(cs((await r.get('/items')).headers), /hit/, 'a failed unsafe request invalidates nothing')
  const post = await r.get('/items', {}, 'POST')
  t.equal(cs(post.headers), 'Portcullis; fwd=method')
  t.match(cs((await r.get('/items')).headers), /fwd=uri-miss/)
  t.match(cs((await r.get('/items?page=2')).headers), /fwd=uri-miss/, 'every query of the URL')
  t.match(cs((await r.get('/items/2')).headers), /fwd=uri-miss/, 'Location')
  t.match(cs((await r.get('/items/3')).headers), /hit/, 'a Content-Location on another host is left alone')
  await r.get('/items/4')
  await r.get('/items/9', {}, 'PUT')
  t.match(cs((await r.get('/items/4')).headers), /fwd=uri-miss/, 'Content-Location on the same host')
  await r.get('/items/5')
  await r.get('/items/6')
  await r.get('/items/undefined')
  await r.get('/items/5', {}, 'PATCH')
  await r.get('/items/6', {}, 'PUT')
  t.match(cs((await r.get('/items/5')).headers), /fwd=uri-miss/, 'PATCH invalidates')
  t.match(cs((await r.get('/items/undefined')).headers), /hit/, 'an answer without Location invalidates no other URL')
  t.match(cs((await r.get('/items/6')).headers), /hit/, 'a 4xx to an unsafe request invalidates nothing')
  await r.get('/items/7')
  await r.get('/items/8')
  t.equal((await r.get('/items/7', {}, 'PATCH')).status, 204)
  t.match(cs((await r.get('/items/7')).headers), /fwd=uri-miss/, 'a Location that is no URL: the request URL is still invalidated')
  t.match(cs((await r.get('/items/8')).headers), /fwd=uri-miss/, 'and the Content-Location after it')
  for (const [method, invalidates] of [['LOCK', true], ['MKCOL', true], ['PROPPATCH', true], ['OPTIONS', false], ['PROPFIND', false], ['REPORT', false]] as const) {
    await r.get('/items/10')
    t.equal((await r.get('/items/10', {}, method)).status, 200, method)
    t.match(cs((await r.get('/items/10')).headers), invalidates ? /fwd=uri-miss/ : /hit/, `${method} ${invalidates ? 'invalidates: not known to be safe' : 'is safe'}`)
  }
})

t.test('concurrent misses collapse into one upstream request; a private answer is not shared', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const r = await rig(t, (req, res, n) => {
    // Age 10: an answer 10 s into its 60 s of freshness.
    void gate.then(() => send(res, 200, { 'cache-control': req.url === '/private' ? 'private, max-age=60' : 'max-age=60', age: '10' }, `answer ${n}`))
  })
  const all = Array.from({ length: 10 }, () => r.get('/hot'))
  t.ok(await until(() => r.seen.length === 1))
  release()
  const answers = await Promise.all(all)
  t.equal(r.seen.length, 1, 'one upstream request for ten clients')
  t.same(answers.map(a => a.body), Array(10).fill('answer 1'))
  // Requests that reach the gateway after the leader's answer are plain hits.
  const collapsed = answers.filter(a => /collapsed/.test(cs(a.headers))).length
  t.ok(collapsed >= 1)
  for (const a of answers.filter(a => /collapsed/.test(cs(a.headers)))) {
    t.match(cs(a.headers), /^Portcullis; fwd=uri-miss; fwd-status=200; collapsed; ttl=(49|50)$/)
    t.match(a.headers.age, /^1[01]$/, 'a collapsed answer has an Age')
  }
  t.equal(collapsed + answers.filter(a => /hit/.test(cs(a.headers))).length, 9)
  t.equal(answers.filter(a => /stored/.test(cs(a.headers))).length, 1)
  const priv = await Promise.all(Array.from({ length: 4 }, () => r.get('/private')))
  t.equal(r.seen.filter(s => s.url === '/private').length, 4, 'waiters went upstream themselves')
  t.same(new Set(priv.map(p => p.body)).size, 4)
  const metrics = await (await request(`${r.gw.adminUrl as string}/metrics`)).body.text()
  t.match(metrics, `portcullis_cache_requests_total{route="r",result="collapsed"} ${collapsed}`)
})

t.test('a ranged miss does not lead a collapse: the requests behind it wait for a whole answer, a ranged one gets its part of it', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  const r = await rig(t, (req, res, n) => {
    const ranged = req.headers.range !== undefined
    void gate.then(() => ranged
      ? send(res, 206, { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-1/10' }, '01')
      : send(res, 200, { 'cache-control': 'max-age=60' }, n === 2 ? '0123456789' : 'again'))
  }, '{ collapseTimeout: 14s }')
  const first = r.get('/v', { range: 'bytes=0-1' })
  t.ok(await until(() => r.seen.length === 1))
  const whole = r.get('/v')
  t.ok(await until(() => r.seen.length === 2), 'the next request leads: it does not wait on the ranged one')
  const waiting = [r.get('/v'), r.get('/v', { range: 'bytes=2-3' })]
  release()
  t.match(await first, { status: 206, body: '01' })
  t.equal((await whole).body, '0123456789')
  const [plain, part] = await Promise.all(waiting)
  t.equal(plain!.body, '0123456789')
  t.match(part, { status: 206, body: '23' }, 'a ranged waiter: its part of the whole answer')
  t.equal(r.seen.length, 2, 'the requests behind the ranged one did not go upstream')
})

t.test('a conditional miss does not lead a collapse either: its 304 is not stored', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  const r = await rig(t, (req, res) => {
    void gate.then(() => req.headers['if-none-match'] === '"v1"'
      ? send(res, 304, { etag: '"v1"', 'cache-control': 'max-age=60' })
      : send(res, 200, { etag: '"v1"', 'cache-control': 'max-age=60' }, 'whole'))
  }, '{ collapseTimeout: 14s }')
  const conditional = r.get('/c', { 'if-none-match': '"v1"' })
  t.ok(await until(() => r.seen.length === 1))
  const whole = r.get('/c')
  t.ok(await until(() => r.seen.length === 2), 'the next request leads: it does not wait on the conditional one')
  const waiting = [r.get('/c'), r.get('/c', { 'if-none-match': '"v1"' })]
  release()
  t.equal((await conditional).status, 304)
  t.equal((await whole).body, 'whole')
  const [plain, revalidating] = await Promise.all(waiting)
  t.equal(plain!.body, 'whole')
  t.equal(revalidating!.status, 304, 'a conditional waiter: answered from the whole answer')
  t.equal(r.seen.length, 2)
})

t.test('collapse waiters are bounded by collapseTimeout', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  const r = await rig(t, (_req, res, n) => {
    if (n === 1) void gate.then(() => send(res, 200, { 'cache-control': 'max-age=60' }, 'slow'))
    else send(res, 200, { 'cache-control': 'max-age=60' }, 'fast')
  }, '{ collapseTimeout: 100ms }')
  const slow = r.get('/k')
  t.ok(await until(() => r.seen.length === 1))
  const waiter = await r.get('/k')
  t.equal(waiter.body, 'fast', 'went upstream after the timeout')
  release()
  t.equal((await slow).body, 'slow')
})

/** A cache whose upstream holds its first answer (until teardown) and answers the others at once with `answer <n>`. */
async function firstAnswerHeld (t: Test): Promise<Rig> {
  const held: Array<() => void> = []
  t.teardown(() => { for (const answer of held) answer() })
  return await rig(t, (_req, res, n) => {
    const answer = () => { if (!res.destroyed) send(res, 200, { 'cache-control': 'max-age=60' }, `answer ${n}`) }
    if (n === 1) held.push(answer); else answer()
  }, '{ collapseTimeout: 14s }')
}

t.test('a leader whose client leaves before the answer hands the fetch to one of its waiters', async t => {
  const r = await firstAnswerHeld(t)
  const leaving = new AbortController()
  const leader = request(`${r.gw.url}/k`, { signal: leaving.signal }).catch((err: unknown) => err)
  t.ok(await until(() => r.seen.length === 1))
  const waiters = Array.from({ length: 5 }, () => r.get('/k'))
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 6))
  const started = Date.now()
  leaving.abort()
  await leader
  const answers = await Promise.all(waiters)
  t.ok(Date.now() - started < 10_000, 'answered long before collapseTimeout')
  t.equal(r.seen.length, 2, 'one waiter went upstream for all')
  t.same(answers.map(a => a.body), Array(5).fill('answer 2'))
  t.equal(answers.filter(a => /collapsed/.test(cs(a.headers))).length, 4)
  t.equal(answers.filter(a => /fwd=uri-miss; fwd-status=200; stored/.test(cs(a.headers))).length, 1)
})

t.test('a waiter whose client left does not take over a fetch: the next one does', async t => {
  const r = await firstAnswerHeld(t)
  const leaving = [new AbortController(), new AbortController()]
  const [leader, first] = leaving.map(ac => request(`${r.gw.url}/k`, { signal: ac.signal }).catch((err: unknown) => err))
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 2))
  const second = r.get('/k')
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 3))
  ;(leaving[1] as AbortController).abort()
  await first
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 2), 'the first waiter is gone')
  const started = Date.now()
  ;(leaving[0] as AbortController).abort()
  await leader
  const answer = await second
  t.ok(Date.now() - started < 10_000, 'answered long before collapseTimeout')
  t.equal(answer.body, 'answer 2')
  t.match(cs(answer.headers), /fwd=uri-miss; fwd-status=200; stored/)
  t.equal(r.seen.length, 2)
})

t.test('a leader failed by a later plugin hands the fetch to one of its waiters', async t => {
  // A plugin after the cache that holds the first request until the test fails it, and lets the others through.
  const failFirst = sharedWithPlugins<{ calls: number, fail?: (err: Error) => void }>('failFirst', { calls: 0 })
  const plugin = writeUserPlugin(t.testdir({}), 'fail-first', 100,
    "{ onRequest: () => shared('failFirst').calls++ === 0 ? new Promise<void>((_resolve, reject) => { shared('failFirst').fail = reject }) : undefined }")
  const r = await rig(t, (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `answer ${n}`),
    '{ collapseTimeout: 14s }', `loadPlugins: [ "${plugin}" ]\nplugins: { fail-first: {} }`)
  const leader = r.get('/k')
  t.ok(await until(() => failFirst.fail !== undefined))
  const waiters = Array.from({ length: 3 }, () => r.get('/k'))
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 4))
  failFirst.fail?.(new Error('failed on purpose'))
  t.equal((await leader).status, 500)
  const answers = await Promise.all(waiters)
  t.same(answers.map(a => a.body), Array(3).fill('answer 1'), 'one waiter went upstream for all')
  t.equal(r.seen.length, 1)
  t.equal(answers.filter(a => /collapsed/.test(cs(a.headers))).length, 2)
})

/** A raw GET of `path` on `gw` whose response the client does not read until it resumes the socket; `received` counts what it read. */
async function unreadGet (gw: TestGateway, path: string): Promise<{ socket: ReturnType<typeof connect>, received: () => number }> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  await once(socket, 'connect')
  let received = 0
  socket.on('data', (chunk: Buffer) => { received += chunk.length }).on('error', () => {}).pause()
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${new URL(gw.url).host}\r\n\r\n`)
  return { socket, received: () => received }
}

const LARGE = Buffer.alloc(12 * 1024 * 1024, 'c')

t.test('a collapse leader whose client does not read holds no waiter: they get the entry once the upstream has sent it', async t => {
  // The upstream holds its last byte until the waiter is at the gateway: sent whole at once, the
  // entry could be stored before the waiter came, which would then be a plain hit.
  let lastByte: (() => void) | undefined
  const r = await rig(t, (_req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': LARGE.length })
    res.write(LARGE.subarray(0, -1))
    lastByte = () => res.end(LARGE.subarray(-1))
  }, `{ collapseTimeout: 14s, maxObjectSize: ${2 * LARGE.length} }`)
  const leader = await unreadGet(r.gw, '/k')
  t.teardown(() => leader.socket.destroy())
  t.ok(await until(() => lastByte !== undefined))
  const waiting = request(`${r.gw.url}/k`)
  t.ok(await until(() => r.gw.gateway.runtime.inFlight === 2), 'the waiter is at the gateway')
  lastByte?.()
  const waiter = await waiting
  t.equal((await waiter.body.arrayBuffer()).byteLength, LARGE.length)
  t.match(cs(waiter.headers), /collapsed/)
  t.equal(r.seen.length, 1, 'one upstream request')
  const target = () => r.gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]
  t.equal(target()?.inFlight, 0, 'the leader\'s upstream request is over, its client still reading')
  t.equal(target()?.connections.busy, 0)
})

t.test('a large miss read slowly but steadily is not cut: clientTimeouts.send is between reads, not for what the cache holds', async t => {
  // Over HTTP/2 the client paces the gateway exactly: 256 KiB of window every 150 ms, for 3 MiB (about 1.8 s in all).
  const body = Buffer.alloc(3 * 1024 * 1024, 's')
  const up = await startUpstream((req, res) => { req.resume(); send(res, 200, { 'cache-control': 'max-age=60' }, body.toString()) })
  t.teardown(() => up.close())
  const { gw, ca } = await startH2Gateway(t, 'true', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cache: { maxObjectSize: ${2 * body.length} } } }
`, { server: '  clientTimeouts: { send: 600ms }\n' })
  const session = h2connect(gw.url, { ca: ca.cert, settings: { initialWindowSize: 256 * 1024 } })
  t.teardown(() => session.destroy())
  const stream = session.request({ ':path': '/k' })
  stream.on('error', () => {}).pause()
  let received = 0
  const readBuffered = () => { for (let c: Buffer | null; (c = stream.read() as Buffer | null) !== null;) received += c.length }
  const timer = setInterval(readBuffered, 150)
  t.teardown(() => clearInterval(timer))
  await until(() => received === body.length || stream.closed, 20_000)
  // A stream both sides have ended is closed while its last window may still wait in the buffer.
  readBuffered()
  t.equal(received, body.length, 'read it all')
  t.notOk(gw.logs.some(l => l.error === 'client_send_timeout'), 'not cut off')
})

t.test('a HEAD or a no-store request leads no collapse: a GET for the same key beside it goes upstream at once', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  // Every answer waits for the gate; a collapse timeout far past the test's waits.
  const r = await rig(t, (_req, res) => { void gate.then(() => send(res, 200, { 'cache-control': 'max-age=60' }, 'body')) }, '{ collapseTimeout: 14s }')
  const upstreamFor = (url: string) => r.seen.filter(s => s.url === url).length
  const head = r.get('/h', {}, 'HEAD')
  t.ok(await until(() => upstreamFor('/h') === 1))
  const getAfterHead = r.get('/h')
  const noStore = r.get('/n', { 'cache-control': 'no-store' })
  t.ok(await until(() => upstreamFor('/n') === 1))
  const getAfterNoStore = r.get('/n')
  t.ok(await until(() => upstreamFor('/h') === 2 && upstreamFor('/n') === 2), 'each GET went upstream without waiting for the request before it')
  release()
  for (const [first, get] of [[await head, await getAfterHead], [await noStore, await getAfterNoStore]] as const) {
    t.equal(first.status, 200)
    // Its answer waited at the gate while the test sent the others: it aged on the way (ttl below 60 on a slow machine).
    t.match(cs(get.headers), /^Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=(5\d|60)$/)
    t.equal(get.body, 'body')
  }
})

t.test('a 304 naming another representation (ETag or Last-Modified) updates nothing: the entry is dropped', async t => {
  const r = await rig(t, (req, res) => {
    const conditional = req.headers['if-none-match'] !== undefined || req.headers['if-modified-since'] !== undefined
    const lm: Record<string, string> = req.url === '/lm' ? { 'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT' } : { etag: '"a"' }
    const other: Record<string, string> = req.url === '/lm' ? { 'last-modified': 'Tue, 02 Jan 2024 00:00:00 GMT' } : { etag: '"b"' }
    const cc = req.url === '/swr' ? 'max-age=1, stale-while-revalidate=60' : 'max-age=0'
    if (conditional) send(res, 304, { ...other, 'cache-control': 'max-age=100', 'x-updated': 'yes' })
    else send(res, 200, { ...lm, 'cache-control': cc, age: req.url === '/swr' ? '1' : '0', 'content-type': 'text/plain' }, `body of ${req.url as string}`)
  })
  for (const path of ['/etag', '/lm']) {
    await r.get(path)
    const answered = await r.get(path)
    t.same([answered.status, answered.body, answered.headers['x-updated']], [200, `body of ${path}`, undefined], `${path}: the stored response, not updated`)
    t.equal(cs(answered.headers), 'Portcullis; fwd=stale; fwd-status=304; detail=validator-mismatch')
    const after = await r.get(path)
    t.match(cs(after.headers), /^Portcullis; fwd=uri-miss; fwd-status=200; stored/, `${path}: dropped, fetched whole next time`)
  }
  await r.get('/swr')
  const stale = await r.get('/swr')
  t.match(cs(stale.headers), /^Portcullis; hit/)
  let latest = ''
  for (let i = 0; i < 100 && !latest.includes('fwd=uri-miss'); i++) latest = cs((await r.get('/swr')).headers)
  t.match(latest, /^Portcullis; fwd=uri-miss/, 'a background revalidation\'s mismatched 304 drops the entry too')
})

t.test('stale-while-revalidate: stale served at once, one background revalidation', async t => {
  let version = 1
  let release: (() => void) | undefined
  const r = await rig(t, (req, res) => {
    const answer = () => send(res, 200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', age: '1', etag: `"v${version}"` }, `version ${version}`)
    if (req.headers['if-none-match'] === undefined || release !== undefined) { answer(); return }
    version = 2
    release = answer // the first revalidation is held until the test has seen the stale answers
  })
  await r.get('/swr')
  const a = await r.get('/swr', { 'accept-language': 'fr' })
  const b = await r.get('/swr')
  t.equal(a.body, 'version 1')
  t.equal(b.body, 'version 1')
  t.match(cs(a.headers), /^Portcullis; hit; ttl=-1$/)
  t.ok(await until(() => release !== undefined))
  await new Promise(resolve => setTimeout(resolve, 300)) // asserting that no second revalidation comes
  t.equal(r.seen.length, 2, 'one background request, however many stale hits')
  t.equal(r.seen[1]?.headers['if-none-match'], '"v1"')
  t.equal(r.seen[1]?.headers['accept-language'], 'fr', 'with the headers of the request that found the entry stale')
  ;(release as () => void)()
  let latest = ''
  const poll = async () => { latest = (await r.get('/swr')).body }
  for (let i = 0; i < 100 && latest !== 'version 2'; i++) await poll()
  t.equal(latest, 'version 2', 'the background answer replaced the entry')
  t.ok(await until(() => r.seen.length >= 3), 'once done, a later stale hit revalidates again')
})

t.test('stale-if-error: stale on a 5xx or with the upstream gone; must-revalidate gives 504', async t => {
  let failing = false
  const r = await rig(t, (req, res, n) => {
    if (failing && req.url === '/404') { send(res, 404, {}, 'gone'); return }
    if (failing) { send(res, 500, { 'x-failure': 'yes', 'content-type': 'text/html' }, 'down'); return }
    const cc: Record<string, string> = { '/mr': 'max-age=1, must-revalidate', '/mr-sie': 'max-age=1, must-revalidate, stale-if-error=60', '/short': 'max-age=1, stale-if-error=1' }
    send(res, 200, { 'cache-control': cc[req.url as string] ?? 'max-age=1, stale-if-error=60', age: req.url === '/short' ? '10' : '1', etag: `"${n}"`, 'content-type': 'text/plain' }, `body ${n}`)
  }, '{ requestCacheControl: honor }')
  for (const p of ['/sie', '/mr', '/mr-sie', '/short', '/404']) await r.get(p)
  failing = true
  t.equal((await r.get('/404')).status, 404, 'stale-if-error is for 5xx answers, not 4xx')
  t.equal((await r.get('/mr-sie')).status, 500, 'must-revalidate wins over stale-if-error')
  t.equal((await r.get('/short')).status, 500, 'past the stale-if-error window (500: the least 5xx)')
  t.equal((await r.get('/short', { 'cache-control': 'max-stale=3600' })).body, 'body 4', 'the error answer left the stored response in place')
  const asked = await r.get('/short', { 'cache-control': 'stale-if-error=3600' })
  t.equal(asked.body, 'body 4', "the request's stale-if-error, past the response's window")
  t.match(cs(asked.headers), /fwd-status=500; .*detail=stale-if-error$/)
  t.equal((await r.get('/mr', { 'cache-control': 'stale-if-error=3600' })).status, 500, "the request's, not with must-revalidate")
  const stale = await r.get('/sie', { 'x-request-id': 'req-sie-1' })
  t.equal(stale.status, 200)
  t.equal(stale.body, 'body 1')
  t.same([stale.headers['x-failure'], stale.headers['content-type'], stale.headers['content-length']], [undefined, 'text/plain', '6'], 'the stored response\'s headers, not the error\'s')
  t.equal(stale.headers['x-request-id'], 'req-sie-1', 'the request id kept')
  t.match(stale.headers.age, /^[1-9]\d*$/, 'with its Age')
  t.match(cs(stale.headers), /^Portcullis; fwd=stale; fwd-status=500; ttl=-\d+; detail=stale-if-error$/, 'past its freshness: a negative ttl')
  t.equal((await r.get('/mr')).status, 500, 'an upstream answer is passed on')
  const metrics = await (await request(`${r.gw.adminUrl as string}/metrics`)).body.text()
  t.match(metrics, 'portcullis_cache_requests_total{route="r",result="stale"} 3\n', 'the stale answers counted (max-stale, stale-if-error twice)')
  await r.up.close()
  const gone = await r.get('/sie')
  t.equal(gone.status, 200)
  t.equal(gone.body, 'body 1')
  t.match(cs(gone.headers), /fwd-status=502; ttl=-\d+; detail=stale-if-error$/)
  const mr = await r.get('/mr')
  t.equal(mr.status, 504, 'must-revalidate with the upstream down: 504, not the stale body')
  t.equal(cs((await r.get('/never')).headers), 'Portcullis; fwd=uri-miss; fwd-status=502; detail=gateway-error')
  t.notMatch(mr.body, /body 2/)
})

t.test('the route\'s staleIfError: stale on failure without the upstream\'s stale-if-error; never past must-revalidate', async t => {
  let failing = false
  const r = await rig(t, (req, res, n) => {
    if (failing) { send(res, 503, {}, 'down'); return }
    send(res, 200, { 'cache-control': req.url === '/mr' ? 'max-age=1, must-revalidate' : 'max-age=1', age: '5', etag: `"${n}"` }, `body ${n}`)
  }, '{ staleIfError: 1h }')
  for (const p of ['/a', '/mr']) await r.get(p)
  failing = true
  const stale = await r.get('/a')
  t.same([stale.status, stale.body], [200, 'body 1'])
  t.match(cs(stale.headers), /fwd=stale; fwd-status=503; ttl=-\d+; detail=stale-if-error$/)
  t.equal((await r.get('/mr')).status, 503, 'must-revalidate: the error, not the stale body')
  await r.up.close()
  const gone = await r.get('/a')
  t.same([gone.status, gone.body], [200, 'body 1'], 'the upstream unreachable')
  t.equal((await r.get('/mr')).status, 504)
})

t.test('the route\'s staleWhileRevalidate: stale served at once and revalidated in the background, without the upstream\'s directive', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.headers['if-none-match'] !== undefined) send(res, 304, { etag: '"e"', 'cache-control': 'max-age=60' })
    else send(res, 200, { 'cache-control': req.url === '/mr' ? 'max-age=1, must-revalidate' : 'max-age=1', age: '5', etag: '"e"' }, `body ${n}`)
  }, '{ staleWhileRevalidate: 1h }')
  await r.get('/a')
  const stale = await r.get('/a')
  t.equal(stale.body, 'body 1')
  t.match(cs(stale.headers), /^Portcullis; hit; ttl=-\d+$/, 'served at once, stale')
  t.ok(await until(() => r.seen.length === 2), 'revalidated in the background')
  let freshened = ''
  for (let i = 0; i < 100 && !freshened.includes('ttl=59') && !freshened.includes('ttl=60'); i++) freshened = cs((await r.get('/a')).headers)
  t.match(freshened, /^Portcullis; hit; ttl=(59|60)$/, 'freshened by the 304')
  await r.get('/mr')
  const mr = await r.get('/mr')
  t.match(cs(mr.headers), /^Portcullis; fwd=stale; fwd-status=304/, 'must-revalidate: revalidated before use')
})

t.test('stale windows count from the end of freshness: 10 s past a 30 s freshness is inside windows of 20 s', async t => {
  let failing = false
  const r = await rig(t, (req, res, n) => {
    if (failing) { send(res, 500, {}, 'down'); return }
    const cc: Record<string, string> = { '/sie': 'max-age=30, stale-if-error=20', '/max-stale': 'max-age=30', '/swr': 'max-age=30, stale-while-revalidate=20' }
    send(res, 200, { 'cache-control': cc[req.url as string] as string, age: '40', etag: `"${n}"` }, `body ${n}`)
  }, '{ requestCacheControl: honor }')
  for (const p of ['/sie', '/max-stale', '/swr']) await r.get(p)
  t.equal((await r.get('/swr')).body, 'body 3', 'stale-while-revalidate: the stored answer at once')
  t.equal((await r.get('/max-stale', { 'cache-control': 'max-stale=20' })).body, 'body 2', 'max-stale: the stored answer')
  failing = true
  t.equal((await r.get('/sie')).body, 'body 1', 'stale-if-error: the stored answer in place of the 500')
})

t.test('cache key: query parameters sorted, include and ignore lists, selected headers', async t => {
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${req.url as string} ${n}`),
    '{ key: { query: { ignore: [utm_source] }, headers: [x-tenant] } }')
  await r.get('/q?b=2&a=1&utm_source=x')
  t.equal((await r.get('/q?a=1&b=2')).body, '/q?b=2&a=1&utm_source=x 1', 'sorted, utm_source ignored')
  t.equal((await r.get('/q?a=1&b=2', { 'x-tenant': 'one' })).body, '/q?a=1&b=2 2', 'header in the key')
  await r.get('/s?sort=name&sort=-date')
  t.equal((await r.get('/s?sort=-date&sort=name')).body, '/s?sort=-date&sort=name 4', 'the values of one name in another order: another query')
  const purged = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url: `${r.gw.url}/q?utm_source=y&b=2&a=1` }) })
  t.same(await purged.body.json(), { purged: 2 }, 'a URL purge uses the route\'s key: both header variants')
  const inc = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${req.url as string} ${n}`), '{ key: { query: { include: [id] } } }')
  await inc.get('/i?id=1&x=1')
  t.equal((await inc.get('/i?x=2&id=1')).body, '/i?id=1&x=1 1')
  t.equal((await inc.get('/i?id=2')).body, '/i?id=2 2')
})

t.test('bypass by header or cookie; methods and statuses; defaultTtl and the capped Last-Modified heuristic', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.url === '/lm') send(res, 200, { 'last-modified': new Date(Date.now() - 1000_000).toUTCString(), date: new Date().toUTCString() }, 'lm')
    else if (req.url === '/old') send(res, 200, { 'last-modified': 'Mon, 01 Jan 2001 00:00:00 GMT', date: new Date().toUTCString() }, 'old')
    else if (req.url === '/404') send(res, 404, { 'cache-control': 'max-age=60' }, 'no')
    else send(res, 200, {}, `plain ${n}`)
  }, '{ defaultTtl: 30s, heuristicMax: 1h, statuses: [200], bypass: { headers: [x-no-cache], cookies: [session] } }')
  t.match(cs((await r.get('/plain')).headers), /stored; ttl=(29|30)$/, 'defaultTtl')
  t.match(cs((await r.get('/lm')).headers), /stored; ttl=100$/, '10% of the Last-Modified age')
  t.match(cs((await r.get('/old')).headers), /stored; ttl=3600$/, 'capped by heuristicMax')
  t.match(cs((await r.get('/404')).headers), /detail=status$/)
  t.equal(cs((await r.get('/plain', { 'x-no-cache': '1' })).headers), 'Portcullis; fwd=bypass')
  t.equal(cs((await r.get('/plain', { cookie: 'a=1; session=abc' })).headers), 'Portcullis; fwd=bypass')
  t.match(cs((await r.get('/plain', { cookie: 'mysession=abc' })).headers), /hit/)
  const getOnly = await rig(t, (_req, res) => send(res, 200, { 'cache-control': 'max-age=60' }, 'x'), '{ methods: [GET] }')
  await getOnly.get('/h')
  t.equal(cs((await getOnly.get('/h', {}, 'HEAD')).headers), 'Portcullis; fwd=method')
})

t.test('maxObjectSize: larger bodies are streamed to the client and not kept', async t => {
  const big = 'x'.repeat(5000)
  const r = await rig(t, (req, res) => {
    if (req.url === '/chunked') { res.writeHead(200, { 'cache-control': 'max-age=60' }); res.write(big); res.end(big) } else send(res, 200, { 'cache-control': 'max-age=60' }, big)
  }, '{ maxObjectSize: 4KiB }')
  const a = await r.get('/big')
  t.equal(a.body.length, 5000)
  t.match(cs(a.headers), /detail=too-large$/)
  const c = await r.get('/chunked')
  t.equal(c.body.length, 10000)
  const c2 = await r.get('/chunked')
  t.equal(c2.body.length, 10000)
  t.match(cs(c2.headers), /fwd=uri-miss/, 'capture dropped past the limit')
})

t.test('a memory store\'s maxBytes in units: a body larger than the whole store is not kept in it', async t => {
  const r = await rig(t, (req, res) => send(res, 200, { 'cache-control': 'max-age=60' }, req.url === '/small' ? 'x'.repeat(500) : 'x'.repeat(3000)),
    '{ store: tiny }', 'stores:\n  tiny: { type: memory, maxBytes: 2KiB }\n')
  for (const path of ['/small', '/small', '/large', '/large']) await r.get(path)
  t.same(r.seen.map(s => s.url), ['/small', '/large', '/large'], '500 bytes kept, 3000 not')
})

t.test('purge by URL, prefix, surrogate key and everything', async t => {
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60', 'surrogate-key': req.url?.startsWith('/t') === true ? 'tagged other' : 'plain', ...(req.url === '/t/v' ? { vary: 'x-v' } : {}) }, `${n}`))
  const paths = ['/a/1', '/a/2', '/b/1', '/t/1', '/t/2']
  const warm = async () => { for (const p of paths) await r.get(p) }
  const cached = async () => Promise.all(paths.map(async p => /hit/.test(cs((await r.get(p)).headers))))
  const purge = async (body: unknown) => {
    const res = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }
  await warm()
  t.equal((await r.get('/a/1')).headers['surrogate-key'], undefined, 'the surrogate key header is not passed to clients')
  t.same(await purge({ url: `${r.gw.url}/a/1` }), { status: 200, body: { purged: 1 } })
  t.same(await cached(), [false, true, true, true, true])
  t.same((await purge({ prefix: '/a/' })).status, 200)
  t.same(await cached(), [false, false, true, true, true])
  await r.get('/t/v', { 'x-v': 'a' })
  t.match(cs((await r.get('/t/v', { 'x-v': 'a' })).headers), /hit/)
  t.same(await purge({ tag: 'tagged' }), { status: 200, body: { purged: 3 } })
  t.same(await cached(), [true, true, true, false, false])
  t.match(cs((await r.get('/t/v', { 'x-v': 'a' })).headers), /^Portcullis; fwd=(uri|vary)-miss/, 'a Vary variant is purged by its tag')
  t.same((await purge({ all: true })).status, 200)
  t.same(await cached(), [false, false, false, false, false])
  t.same(await purge({ url: 'not a url' }), { status: 400, body: { error: 'bad_purge', message: '"url" must be an absolute URL, such as https://api.example.com/items/7' } })
  // Nothing is cached under another scheme: not "purged 0" as if it were a URL of the site.
  t.same(await purge({ url: 'file:///etc/passwd' }), { status: 400, body: { error: 'bad_purge', message: '"url" must be an http: or https: URL (not file:), such as https://api.example.com/items/7' } })
  t.same(await purge({ url: 'javascript:alert(1)' }), { status: 400, body: { error: 'bad_purge', message: '"url" must be an http: or https: URL (not javascript:), such as https://api.example.com/items/7' } })
  t.equal((await purge({})).status, 400)
})

t.test('purges and invalidations normalize their paths as requests are: escapes, ~, //; a path requests cannot have is a 400', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.method === 'POST') send(res, 201, { location: '/new/caf%c3%a9', 'content-location': '/new/%7Euser' })
    else send(res, 200, { 'cache-control': 'max-age=60' }, `${n}`)
  })
  const purge = async (body: unknown) => {
    const res = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }
  const hit = async (path: string) => /hit/.test(cs((await r.get(path)).headers))
  for (const [asked, purged] of [['/enc/caf%C3%A9', '/enc/caf%c3%a9'], ['/enc/~user', '/enc/%7Euser'], ['/enc/a/b', '/enc//a/./b']] as const) {
    await r.get(asked)
    t.ok(await hit(asked), `${asked} cached`)
    t.same(await purge({ url: `${r.gw.url}${purged}` }), { status: 200, body: { purged: 1 } }, `purged as ${purged}`)
    t.notOk(await hit(asked), `${asked} is gone`)
  }
  t.same(await purge({ url: `${r.gw.url}/enc/a%2Fb` }), { status: 400, body: { error: 'bad_purge', message: '"url" has a path requests are refused for (400 bad_path): nothing is cached under it' } })
  for (const p of ['/new/caf%C3%A9', '/new/~user']) await r.get(p)
  t.equal((await r.get('/new', {}, 'POST')).status, 201)
  t.notOk(await hit('/new/caf%C3%A9'), 'Location, its escapes in lower case')
  t.notOk(await hit('/new/~user'), 'Content-Location, with ~ escaped')
})

t.test('routes without the cache have no Cache-Status; responses of a cached route always do', async t => {
  const r = await rig(t, (_req, res) => send(res, 200, {}, 'x'), '{}', `  - name: plain
    match: { path: /plain }
    upstream: up
`)
  t.equal((await r.get('/plain')).headers['cache-status'], undefined)
  t.equal(cs((await r.get('/x')).headers), 'Portcullis; fwd=uri-miss; fwd-status=200; detail=no-freshness')
})

t.test('an answer the cache never saw has no Cache-Status: a refusal by a plugin that runs before it', async t => {
  const r = await rig(t, (_req, res) => send(res, 200, { 'cache-control': 'max-age=60' }, 'x'), '{}', `  - name: refused
    match: { path: /refused }
    upstream: up
    plugins:
      ip-filter: { deny: [127.0.0.1, "::1"] }
      cache: {}
`)
  const refused = await r.get('/refused')
  t.same([refused.status, refused.headers['cache-status']], [403, undefined])
  t.equal(r.seen.length, 0)
})

t.test('settings: name, heuristicMax default 1d, header names in any case, cookie names matched literally', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.url === '/old') send(res, 200, { 'last-modified': 'Mon, 01 Jan 2001 00:00:00 GMT', date: new Date().toUTCString() }, 'old')
    else send(res, 200, { 'cache-control': 'max-age=60', 'x-tags': 'k1 k2' }, `${req.url as string} ${n}`)
  }, '{ name: Edge-1, surrogateKeyHeader: X-Tags, bypass: { headers: [X-Skip], cookies: [a.b] } }')
  t.equal(cs((await r.get('/old')).headers), 'Edge-1; fwd=uri-miss; fwd-status=200; stored; ttl=86400', 'the heuristic capped at 1d by default')
  const tagged = await r.get('/t')
  t.equal(tagged.headers['x-tags'], undefined, 'the configured surrogate key header is not passed on')
  t.equal(cs((await r.get('/t', { 'x-skip': '1' })).headers), 'Edge-1; fwd=bypass')
  t.equal(cs((await r.get('/t', { cookie: 'a.b=1' })).headers), 'Edge-1; fwd=bypass')
  t.equal(cs((await r.get('/t', { cookie: 'x=1;a.b=1' })).headers), 'Edge-1; fwd=bypass', 'a later cookie, no space')
  t.match(cs((await r.get('/t', { cookie: 'axb=1' })).headers), /^Edge-1; hit/, 'the dot is not a wildcard')
  const purged = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tag":"k2"}' })
  t.same(await purged.body.json(), { purged: 1 }, 'tagged by the configured header')
  const metrics = await (await request(`${r.gw.adminUrl as string}/metrics`)).body.text()
  t.match(metrics, '# HELP portcullis_cache_requests_total Requests on cached routes, by what the cache did: hit, miss, stale (served stale), revalidated (an entry freshened by the upstream), bypass, collapsed (served from another request\'s fetch), unsatisfiable (only-if-cached answered 504).')
  t.match(metrics, '# HELP portcullis_cache_stored_bytes_total Bytes of responses (head and body) the cache wrote, by store.')
  t.match(metrics, 'portcullis_cache_requests_total{route="r",result="hit"} 1\n')
  t.match(metrics, 'portcullis_cache_requests_total{route="r",result="miss"} 2\n')
  t.match(metrics, 'portcullis_cache_requests_total{route="r",result="bypass"} 3\n')
  t.match(metrics, /portcullis_cache_stored_bytes_total\{store="[^"]+"\} [1-9]\d*\n/)
})

t.test('purge requests that are not understood get 400; a purge counts over every cached route', async t => {
  const r = await rig(t, (req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${n}`), '{}', `  - name: second
    match: { path: /two/* }
    upstream: up
    plugins:
      cache: {}
`)
  const purge = async (body: string) => {
    const res = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
    return { status: res.statusCode, body: await res.body.json() as Record<string, unknown> }
  }
  const usage = { error: 'bad_purge', message: 'send one of {"url": "<absolute URL>"}, {"prefix": "/path/"}, {"tag": "<surrogate key>"}, {"all": true}, alone' }
  const twoSelectors = ['{"tag":"x","all":true}', '{"prefix":"/","tagg":"x"}', '{}']
  for (const body of ['{"prefix":"a/"}', '{"tag":""}', '{"all":"yes"}', '{"url":7}', 'null', '[]', ...twoSelectors]) t.same(await purge(body), { status: 400, body: usage }, body)
  // Responses list their tags separated by white space: a tag with some was never stored, and "purged 0" would say it was done.
  const oneTag = { error: 'bad_purge', message: '"tag" must be one tag without white space: the surrogate key header separates tags by spaces, so no response is tagged with one that has them; send one purge per tag' }
  for (const tag of ['a b', ' a', 'a\t', 'a\nb', 'a\u00a0b']) t.same(await purge(JSON.stringify({ tag })), { status: 400, body: oneTag }, JSON.stringify(tag))
  await r.get('/one')
  await r.get('/two/x')
  t.same(await purge('{"prefix":"/"}'), { status: 200, body: { purged: 2 } }, 'a prefix purge on each route')
  await r.get('/one')
  await r.get('/two/x')
  t.same(await purge('{"all":true}'), { status: 200, body: { purged: 2 } })
  // A surrogate key that looks like a URL tag names only the responses that carried it.
  const host = 'api.example'
  const tagged = await rig(t, (req, res) => send(res, 200, { 'cache-control': 'max-age=60', ...(req.url === '/s' ? { 'surrogate-key': `u:${host}/other` } : {}) }, 'x'))
  await tagged.get('/s', { host })
  await tagged.get('/other', { host })
  const res = await request(`${tagged.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag: `u:${host}/other` }) })
  t.same(await res.body.json(), { purged: 1 }, 'not the URL /other')
})

t.test('collapsed waiters get the leader\'s answer only for their own Vary variant', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const r = await rig(t, (req, res) => {
    void gate.then(() => send(res, 200, { 'cache-control': 'max-age=60', vary: 'accept-language' }, String(req.headers['accept-language'])))
  })
  const leader = r.get('/v', { 'accept-language': 'en' })
  t.ok(await until(() => r.seen.length === 1))
  const langs = ['fr', 'en', 'fr', 'fr', 'en']
  const all = langs.map(l => r.get('/v', { 'accept-language': l }))
  // Waiters cannot be seen: give them time to arrive. The assertions hold for any timing; only
  // the checks of variant matching need the waiters to be waiting.
  await new Promise(resolve => setTimeout(resolve, 300))
  release()
  const answers = await Promise.all([leader, ...all])
  t.same(answers.map(a => a.body), ['en', ...langs], 'each gets its own language')
  t.equal(r.seen.filter(s => s.headers['accept-language'] === 'en').length, 1, 'the other en requests waited for the leader')
})

t.test('stale windows keep an entry without a validator in the store; a 304 Age counts; invalidation and Vary', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.url === '/sie') send(res, 200, { 'cache-control': 'max-age=1, stale-if-error=60', age: '1' }, 'x')
    else if (req.url === '/swr') send(res, 200, { 'cache-control': 'max-age=1, stale-while-revalidate=60', age: '1' }, 'x')
    else if (req.headers['if-none-match'] === '"r"') send(res, 304, { etag: '"r"', 'cache-control': 'max-age=100', age: '30', 'surrogate-key': 'k' })
    else if (req.url === '/reval') send(res, 200, { etag: '"r"', 'cache-control': 'max-age=0' }, 'r')
    else if (req.url === '/cs') send(res, 200, { 'cache-control': 'max-age=60', 'cache-status': 'Origin; fwd=uri-miss' }, 'x')
    else send(res, 200, { 'cache-control': 'max-age=60', vary: 'x-v' }, `${n}`)
  })
  t.equal(fresh(cs((await r.get('/cs')).headers)), 'Origin; fwd=uri-miss, Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60')
  t.match(cs((await r.get('/cs')).headers), /^Portcullis; hit; ttl=(59|60)$/, 'an upstream\'s Cache-Status is not stored')
  t.equal(cs((await r.get('/sie')).headers), 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=-1', 'stale on arrival, kept for stale-if-error')
  t.equal(cs((await r.get('/swr')).headers), 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=-1', 'stale on arrival, kept for stale-while-revalidate')
  await r.get('/reval')
  const revalidated = await r.get('/reval')
  t.match(cs(revalidated.headers), /^Portcullis; fwd=stale; fwd-status=304; stored; ttl=(69|70)$/, 'the Age of the 304 counts')
  t.match(revalidated.headers.age, /^3[01]$/)
  t.equal(revalidated.headers['surrogate-key'], undefined, 'the surrogate key header of a 304 is not passed on')
  const hit = await r.get('/reval')
  t.match(cs(hit.headers), /hit/)
  t.equal(hit.headers['surrogate-key'], undefined, 'nor stored')
  await r.get('/vary', { 'x-v': 'a' })
  await r.get('/vary', {}, 'DELETE')
  t.match(cs((await r.get('/vary', { 'x-v': 'a' })).headers), /^Portcullis; fwd=uri-miss/, 'invalidation removes the Vary marker with the variants')
})

t.test('stale-while-revalidate: a 304 freshens, an error keeps the entry, an unstorable answer drops it, a too large one too', async t => {
  const mode: Record<string, string> = {}
  const r = await rig(t, (req, res, n) => {
    const reval = req.headers['if-none-match'] !== undefined
    const m = mode[req.url as string]
    if (reval && m === '304') send(res, 304, { etag: '"e"', 'cache-control': 'max-age=60' })
    else if (reval && m === 'error') send(res, 500, {}, 'down') // the least 5xx
    else if (reval && m === 'private') send(res, 200, { etag: '"e"', 'cache-control': 'private, max-age=60' }, `private ${n}`)
    else if (reval && m === 'big') send(res, 200, { etag: '"e"', 'cache-control': 'max-age=60' }, 'x'.repeat(100))
    else if (reval && m === 'exact') send(res, 200, { etag: '"e"', 'cache-control': 'max-age=60' }, 'y'.repeat(50))
    else send(res, 200, { etag: '"e"', 'cache-control': 'max-age=1, stale-while-revalidate=60', age: '1' }, `first ${n}`)
  }, '{ maxObjectSize: 50 }')
  const settle = async (path: string, upstreamCalls: number) => {
    await r.get(path)
    t.match((await r.get(path)).body, /^first \d+$/, `${path}: stale served`)
    t.ok(await until(() => r.seen.filter(s => s.url === path).length === upstreamCalls), `${path}: revalidated in the background`)
  }
  for (const p of ['/304', '/error', '/private', '/big', '/exact']) mode[p] = p.slice(1)
  await settle('/304', 2)
  let s304 = ''
  for (let i = 0; i < 100 && !/^Portcullis; hit; ttl=(59|60)$/.test(s304); i++) s304 = cs((await r.get('/304')).headers)
  t.match(s304, /^Portcullis; hit; ttl=(59|60)$/, 'freshened by the background 304')
  await settle('/error', 2)
  t.match(cs((await r.get('/error')).headers), /^Portcullis; hit; ttl=-?\d+$/, 'the stale entry kept after an error')
  // A stale hit starts the next revalidation only once the last has ended: had the error dropped
  // the entry, the next upstream request would be a miss, without a validator.
  const errors = () => r.seen.filter(s => s.url === '/error')
  for (let i = 0; i < 100 && errors().length < 3; i++) await r.get('/error')
  t.equal(errors()[2]?.headers['if-none-match'], '"e"', 'the entry outlives the error: it is revalidated again')
  for (const p of ['/private', '/big']) {
    await settle(p, 2)
    let st = ''
    for (let i = 0; i < 100 && !/fwd=uri-miss/.test(st); i++) st = cs((await r.get(p)).headers)
    t.match(st, /fwd=uri-miss/, `${p}: the entry is dropped`)
  }
  await settle('/exact', 2)
  let exact = { headers: {}, body: '' } as Awaited<ReturnType<typeof r.get>>
  for (let i = 0; i < 100 && exact.body !== 'y'.repeat(50); i++) exact = await r.get('/exact')
  t.match([exact.body, cs(exact.headers)], ['y'.repeat(50), /^Portcullis; hit/], 'a refreshed body of exactly maxObjectSize replaces the entry')
})

t.test('a background revalidation that fails is logged, and the next stale hit tries again', async t => {
  const r = await rig(t, (req, res, n) => {
    if (req.headers['if-none-match'] !== undefined) { res.socket?.destroy(); return }
    send(res, 200, { etag: '"e"', 'cache-control': 'max-age=1, stale-while-revalidate=60', age: '1' }, `first ${n}`)
  }, '{}', 'logging: { level: debug }')
  await r.get('/gone')
  t.equal((await r.get('/gone')).body, 'first 1', 'stale served')
  const failed = () => r.gw.logs.filter(l => l.msg === 'cache background revalidation failed')
  t.ok(await until(() => failed().length === 1))
  t.match(failed()[0], { level: 20, err: { message: /\S/ } })
  for (let i = 0; i < 100 && failed().length < 2; i++) t.equal((await r.get('/gone')).body, 'first 1')
  t.equal(failed().length, 2, 'tried again')
  t.equal(r.seen.length, 3, 'each time by one upstream request')
})

t.test('purging everything removes cache entries only: a rate limit on the same store keeps its count', async t => {
  const r = await rig(t, (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${n}`), `{ store: shared }
      rate-limit: { store: shared, by: [ ip ], limits: [ { name: few, requests: 2, window: 1m } ] }`, `stores:
  shared: { type: memory }
`)
  await r.get('/a')
  t.match(cs((await r.get('/a')).headers), /hit/)
  t.equal((await r.get('/a')).status, 429)
  const res = await request(`${r.gw.adminUrl as string}/plugins/cache/purge`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })
  t.same(await res.body.json(), { purged: 1 })
  t.equal((await r.get('/a')).status, 429, 'the rate limit\'s counter is still there')
})

t.test('a rate limit on a cached route: a hit carries its own quota, not the stored answer\'s', async t => {
  const r = await rig(t, (_req, res, n) => send(res, 200, { 'cache-control': 'max-age=60' }, `${n}`),
    `{}
      rate-limit: { by: [ ip ], limits: [ { name: few, requests: 5, window: 1m } ] }`)
  const miss = await r.get('/q')
  t.match(sfList(miss.headers.ratelimit), [{ name: 'few', r: 4 }])
  const hit = await r.get('/q')
  t.match(cs(hit.headers), /hit/)
  t.match(sfList(hit.headers.ratelimit), [{ name: 'few', r: 3 }], "the hit's own quota, not the stored answer's")
  t.equal(hit.body, '1')
})

t.test('a revalidation answered with a response that may not be stored drops that variant only', async t => {
  const r = await rig(t, (req, res, n) => {
    const cc = req.headers['if-none-match'] !== undefined ? 'private' : 'max-age=60'
    send(res, 200, { 'cache-control': cc, vary: 'x-v', etag: '"e"' }, `${String(req.headers['x-v'])} ${n}`)
  }, '{ requestCacheControl: honor }')
  await r.get('/d', { 'x-v': 'a' })
  await r.get('/d', { 'x-v': 'b' })
  t.equal((await r.get('/d', { 'x-v': 'a', 'cache-control': 'no-cache' })).body, 'a 3')
  t.match(cs((await r.get('/d', { 'x-v': 'a' })).headers), /^Portcullis; fwd=vary-miss/, 'variant a dropped')
  t.match(cs((await r.get('/d', { 'x-v': 'b' })).headers), /^Portcullis; hit/, 'variant b kept')
})

t.test('a 304 whose headers make the stored response one that may not be stored: the client gets it, the entry is dropped', async t => {
  const r = await rig(t, (req, res) => {
    const cc = req.url?.endsWith('private') ? 'private, max-age=60' : req.url?.endsWith('store') ? 'no-store, max-age=60' : 'max-age=60'
    if (req.headers['if-none-match'] === '"e"') send(res, 304, { etag: '"e"', 'cache-control': cc })
    else send(res, 200, { etag: '"e"', 'cache-control': req.url === '/background-private' ? 'max-age=0, stale-while-revalidate=60' : 'max-age=0' }, `body of ${String(req.url)}`)
  }, '{ requestCacheControl: honor }')
  for (const path of ['/private', '/no-store', '/public']) {
    await r.get(path)
    const revalidated = await r.get(path)
    t.same([revalidated.status, revalidated.body], [200, `body of ${path}`], path)
    const next = await r.get(path)
    if (path === '/public') t.match(cs(next.headers), /^Portcullis; hit/, 'a 304 that keeps it storable freshens it')
    else t.match(cs(next.headers), /^Portcullis; fwd=uri-miss/, `${path}: dropped, not served to another client`)
  }
  // The same from a background revalidation (stale-while-revalidate): the stale answer went out, the entry goes.
  await r.get('/background-private')
  t.match(cs((await r.get('/background-private')).headers), /fwd=stale.*detail=stale-while-revalidate|^Portcullis; hit/)
  await until(() => r.seen.filter(s => s.url === '/background-private').length === 2)
  let last = 0
  for (let i = 0; i < 200 && last !== 504; i++) last = (await r.get('/background-private', { 'cache-control': 'only-if-cached' })).status
  t.equal(last, 504, 'dropped once revalidated with a private 304')
})

t.test('defaults: statuses cacheable by default are stored; bodies up to 1 MiB', async t => {
  const r = await rig(t, (req, res) => {
    if (req.url === '/404') send(res, 404, { 'cache-control': 'max-age=60', etag: '"n"' }, 'none')
    else if (req.url === '/410') send(res, 410, { 'cache-control': 'max-age=60' }, 'gone')
    else send(res, 200, { 'cache-control': 'max-age=60' }, 'x'.repeat(req.url === '/mib' ? 1048576 : 1048577))
  })
  for (const p of ['/404', '/410']) t.match(fresh(cs((await r.get(p)).headers)), /; stored; ttl=60$/, p)
  const notFound = await r.get('/404', { 'if-none-match': '"n"' })
  t.same([notFound.status, notFound.body], [404, 'none'], 'a conditional on a stored 404 gets the 404, not 304')
  t.match(fresh(cs((await r.get('/mib')).headers)), /; stored; ttl=60$/, '1 MiB is stored')
  t.match(cs((await r.get('/over')).headers), /detail=too-large$/, 'one byte more is not')
})

t.test('collapsed waiters are not given an answer that is stale on arrival: each goes upstream', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const r = await rig(t, (_req, res, n) => { void gate.then(() => send(res, 200, { 'cache-control': 'max-age=0', etag: '"z"' }, `${n}`)) })
  const leader = r.get('/zero')
  t.ok(await until(() => r.seen.length === 1))
  const waiters = [r.get('/zero'), r.get('/zero')]
  // Waiters cannot be seen: give them time to arrive (the assertion holds for any timing).
  await new Promise(resolve => setTimeout(resolve, 300))
  release()
  await Promise.all([leader, ...waiters])
  t.equal(r.seen.length, 3, 'a stored response that needs revalidation is not shared with the waiters')
})

t.test('a hit to a client that does not read is cut off after clientTimeouts.send; the entry serves on', async t => {
  // 16 MiB: more than loopback's socket buffers take, so the hit has bytes left to send.
  const big = 'x'.repeat(16 * 1024 * 1024)
  const r = await rig(t, (_req, res) => send(res, 200, { 'cache-control': 'max-age=60' }, big), `{ maxObjectSize: ${big.length} }`,
    'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { send: 300ms }')
  t.match(cs((await r.get('/big')).headers), /; stored; /)
  const { host, port } = new URL(r.gw.url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.pause() // never reads
  socket.write(`GET /big HTTP/1.1\r\nhost: ${host}\r\n\r\n`) // the host is part of the key
  // A paused socket never sees the close: the access-log line says when the gateway cut it.
  t.match(await waitForLog(r.gw.logs, { msg: 'request', path: '/big', error: 'client_send_timeout' }, 10_000), { status: 200 })
  socket.destroy()
  const after = await r.get('/big')
  t.same([after.status, after.body.length, r.seen.length], [200, big.length, 1], 'the cut request was a hit; the entry is whole')
  t.match(cs(after.headers), /; hit; /)
})

t.test('Range on a hit: one part is a 206 cut from the stored 200, none that fits a 416; the rest get the whole response', async t => {
  const lastModified = new Date(Date.now() - 60_000).toUTCString()
  const r = await rig(t, (req, res) => {
    const headers: Record<string, string> = { 'cache-control': 'max-age=60', 'content-type': 'text/plain', etag: '"v1"', 'last-modified': lastModified, 'accept-ranges': 'bytes' }
    if (req.url === '/weak') headers.etag = 'W/"v1"'
    if (req.url === '/none') headers['accept-ranges'] = 'none'
    if (req.url === '/gz') headers['content-encoding'] = 'gzip'
    send(res, 200, headers, '0123456789')
  }, '{ methods: [GET, HEAD] }')
  for (const path of ['/a', '/weak', '/none', '/gz']) await r.get(path)
  const range = async (path: string, headers: Record<string, string>, method = 'GET') => {
    const res = await r.get(path, headers, method)
    return { status: res.status, body: res.body, range: res.headers['content-range'], length: res.headers['content-length'], cs: fresh(cs(res.headers)) }
  }
  t.same(await range('/a', { range: 'bytes=2-4' }), { status: 206, body: '234', range: 'bytes 2-4/10', length: '3', cs: 'Portcullis; hit; ttl=60' }, 'a part')
  t.match(await range('/a', { range: 'bytes=-3' }), { status: 206, body: '789', range: 'bytes 7-9/10' }, 'a suffix')
  t.match(await range('/a', { range: 'bytes=8-100' }), { status: 206, body: '89', range: 'bytes 8-9/10' }, 'past the end: up to it')
  t.match(await range('/a', { range: 'bytes=0-1,1-3' }), { status: 206, body: '0123', range: 'bytes 0-3/10' }, 'overlapping parts: one')
  const unsatisfiable = await r.get('/a', { range: 'bytes=10-' })
  t.equal(unsatisfiable.status, 416)
  t.equal(unsatisfiable.headers['content-range'], 'bytes */10')
  t.match(JSON.parse(unsatisfiable.body), { error: 'range_not_satisfiable' })
  t.equal(unsatisfiable.headers.etag, undefined, 'a 416 carries none of the stored headers')
  const whole = { status: 200, body: '0123456789', range: undefined }
  t.match(await range('/a', { range: 'bytes=0-1,5-6' }), whole, 'two parts apart in 10 bytes: their framing would outweigh the whole')
  t.match(await range('/a', { range: 'items=0-1' }), whole, 'another unit')
  t.match(await range('/a', { range: 'bytes=5-2' }), whole, 'malformed')
  t.match(await range('/a', { range: 'bytes=0-1', 'if-range': '"v1"' }), { status: 206, body: '01' }, 'If-Range with the stored ETag')
  t.match(await range('/a', { range: 'bytes=0-1', 'if-range': '"v0"' }), whole, 'If-Range with another ETag')
  t.match(await range('/a', { range: 'bytes=0-1', 'if-range': lastModified }), { status: 206, body: '01' }, 'If-Range with the stored Last-Modified')
  t.match(await range('/a', { range: 'bytes=0-1', 'if-range': new Date(Date.now() - 120_000).toUTCString() }), whole, 'If-Range with another date')
  t.match(await range('/weak', { range: 'bytes=0-1', 'if-range': 'W/"v1"' }), whole, 'a weak ETag never matches If-Range')
  t.match(await range('/none', { range: 'bytes=0-1' }), whole, 'Accept-Ranges: none from the upstream')
  t.match(await range('/gz', { range: 'bytes=0-1' }), whole, 'an encoded body')
  const head = await range('/a', { range: 'bytes=0-1' }, 'HEAD')
  t.match(head, { status: 200, length: '10', range: undefined }, 'HEAD ignores Range')
  t.match(await range('/a', { range: 'bytes=0-1', 'if-none-match': '"v1"' }), { status: 304 }, 'If-None-Match first')
  t.equal(r.seen.length, 4, 'all from the cache')
})

t.test('Range on a hit, parts apart: 206 multipart/byteranges in the order asked; too many parts: the whole', async t => {
  const body = Array.from({ length: 1000 }, (_, i) => `line ${String(i).padStart(3, '0')}\n`).join('')
  const large = 'y'.repeat(200_000)
  const r = await rig(t, (req, res) => send(res, 200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain', etag: '"v1"' }, req.url === '/large' ? large : body))
  await r.get('/m')
  await r.get('/large')
  const res = await r.get('/m', { range: 'bytes=3000-3007, 0-7,4-11, 8500-' })
  t.equal(res.status, 206)
  t.equal(res.headers['content-range'], undefined, 'the parts carry their ranges')
  t.equal(res.headers.etag, '"v1"')
  const boundary = /^multipart\/byteranges; boundary=([0-9a-f]{24})$/.exec(String(res.headers['content-type']))?.[1] as string
  t.ok(boundary, String(res.headers['content-type']))
  t.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body))
  t.match(cs(res.headers), /^Portcullis; hit/)
  const expected = [[3000, 3007], [0, 11], [8500, 8999]].map(([a, b]) =>
    `--${boundary}\r\nContent-Type: text/plain\r\nContent-Range: bytes ${a}-${b}/9000\r\n\r\n${body.slice(a as number, (b as number) + 1)}\r\n`).join('')
  t.equal(res.body, `${expected}--${boundary}--\r\n`, 'overlapping ranges merged, an open range up to the end, the first asked first')
  const again = await r.get('/m', { range: 'bytes=0-7,16-23' })
  t.not(again.headers['content-type'], res.headers['content-type'], 'a boundary of its own per answer')
  const many = Array.from({ length: 17 }, (_, i) => `${i * 40}-${i * 40 + 3}`).join(',')
  t.match(await r.get('/m', { range: `bytes=${many}` }), { status: 200, body }, '17 parts: the whole')
  t.match(await r.get('/m', { range: `bytes=${many.split(',').slice(0, 16).join(',')}` }), { status: 206 }, '16 parts: multipart')
  // A multipart answer is a copy per request, unlike the whole body or one range: at most 64 KiB.
  const within = await r.get('/large', { range: 'bytes=0-29999,100000-129999' })
  t.same([within.status, Number(within.headers['content-length']) < 65536], [206, true], '60,000 bytes in two parts: multipart')
  t.match(await r.get('/large', { range: 'bytes=0-39999,100000-139999' }), { status: 200, body: large }, '80,000 bytes in two parts: the whole')
  t.equal(r.seen.length, 2, 'all from the cache')
})

t.test('targetedCacheControl: CDN-Cache-Control rules this cache, Cache-Control the clients; without the setting it is ignored', async t => {
  const handler: Handler = (req, res, n) => {
    const fields: Record<string, Record<string, string>> = {
      '/gateway-only': { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' },
      '/clients-only': { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' },
      '/invalid': { 'cache-control': 'max-age=60', 'cdn-cache-control': 'max-age=60,,' },
      '/expires': { expires: new Date(Date.now() + 60_000).toUTCString(), 'cdn-cache-control': 'no-cache' }
    }
    send(res, 200, { etag: `"${n}"`, ...fields[req.url as string] }, `${req.url as string} ${n}`)
  }
  const r = await rig(t, handler, '{ targetedCacheControl: [CDN-Cache-Control] }')
  const twice = async (path: string) => { const a = await r.get(path); const b = await r.get(path); return { a, b, upstream: r.seen.filter(s => s.url === path).length } }
  const only = await twice('/gateway-only')
  t.equal(only.upstream, 1, 'stored for the gateway, though no-store for the clients')
  t.equal(only.b.body, '/gateway-only 1')
  t.same([only.b.headers['cache-control'], only.b.headers['cdn-cache-control']], ['no-store', 'max-age=60'], 'both sent on unchanged')
  t.equal((await twice('/clients-only')).upstream, 2, 'no-store for this cache, whatever Cache-Control says')
  t.equal((await twice('/invalid')).upstream, 1, 'an invalid targeted field: Cache-Control rules')
  const expires = await twice('/expires')
  t.equal(expires.upstream, 2, 'Expires ignored: no-cache revalidates each time')
  t.match(cs(expires.b.headers), /fwd=stale; fwd-status=200/)

  const plain = await rig(t, handler)
  const ignored = await plain.get('/gateway-only')
  await plain.get('/gateway-only')
  t.match(cs(ignored.headers), /detail=uncacheable/, 'without the setting, CDN-Cache-Control is not read')
  t.equal(plain.seen.length, 2)
})

t.test('a ranged request that finds its entry stale revalidates the whole response: a 200 replaces the entry, in the background too', async t => {
  const r = await rig(t, (req, res, n) => {
    const cc = req.url === '/swr' ? 'max-age=60, stale-while-revalidate=60' : 'max-age=60'
    if (req.headers.range !== undefined) send(res, 206, { 'cache-control': cc, 'content-range': 'bytes 0-1/10' }, 'ra')
    else send(res, 200, { 'cache-control': cc, etag: `"${n}"`, age: req.headers['if-none-match'] === undefined ? '90' : '0' }, `whole ${n}`)
  })
  // Age 90 on the first answers: stored already stale. The revalidations' answers are fresh for a
  // minute (with a second, a slow machine could find them stale again before the next request).
  await r.get('/fg')
  const fg = await r.get('/fg', { range: 'bytes=0-1' })
  t.same([r.seen[1]!.headers.range, r.seen[1]!.headers['if-none-match']], [undefined, '"1"'], 'the revalidation asked for the whole response')
  t.equal(fg.status, 200, 'the client gets it whole (RFC 9110 14.2)')
  t.equal((await r.get('/fg')).body, 'whole 2', 'and it replaced the entry')
  await r.get('/swr')
  const swr = await r.get('/swr', { range: 'bytes=0-1' })
  t.match(swr, { status: 206, body: 'wh' }, 'stale-while-revalidate: its part of the stale response at once')
  t.ok(await until(() => r.seen.length === 4))
  t.equal(r.seen[3]!.headers.range, undefined, 'the background revalidation asked for the whole response')
  let latest = ''
  for (let i = 0; i < 200 && latest !== 'whole 4'; i++) {
    latest = (await r.get('/swr')).body
    await new Promise(resolve => setTimeout(resolve, 10))
  }
  t.equal(latest, 'whole 4', 'which replaced the entry')
})

t.test('a ranged request that revalidates a stale entry may lead a collapse: it asks for the whole response', async t => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  t.teardown(() => release())
  const r = await rig(t, (req, res, n) => {
    const answer = () => send(res, 200, { 'cache-control': 'max-age=60', etag: `"${n}"`, age: n === 1 ? '90' : '0' }, `whole ${n}`)
    if (n === 1) answer()
    else void gate.then(answer)
  }, '{ collapseTimeout: 14s }')
  await r.get('/s')
  const ranged = r.get('/s', { range: 'bytes=0-1' })
  t.ok(await until(() => r.seen.length === 2))
  const plain = r.get('/s')
  // Both at the gateway before the upstream answers: the plain one waiting (or leading).
  for (let i = 0; i < 500 && await metricValue(r.gw.adminUrl as string, 'portcullis_http_requests_in_flight') < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
  release()
  t.equal((await ranged).body, 'whole 2')
  t.equal((await plain).body, 'whole 2')
  t.equal(r.seen.length, 2, 'the plain request waited for the ranged one')
})

t.test('a ranged request whose stale entry is revalidated with a 304 gets its part of the stored response', async t => {
  const r = await rig(t, (req, res) => {
    if (req.headers['if-none-match'] === '"v"') send(res, 304, { 'cache-control': 'max-age=60', etag: '"v"' })
    else send(res, 200, { 'cache-control': 'max-age=60', etag: '"v"', age: '90' }, '0123456789')
  })
  await r.get('/p')
  const part = await r.get('/p', { range: 'bytes=3-5' })
  t.match(part, { status: 206, body: '345' })
  t.equal(part.headers['content-range'], 'bytes 3-5/10')
  t.match(fresh(cs(part.headers)), /^Portcullis; fwd=stale; fwd-status=304; stored; ttl=60$/)
  t.equal(r.seen.length, 2)
  t.equal((await r.get('/p')).body, '0123456789', 'the entry itself whole')
})

/** An upstream that builds a link from the scheme and host it is told, as link-building apps do. */
const linkBuilder: Handler = (req, res) =>
  send(res, 200, { 'cache-control': 'public, max-age=60' }, `${String(req.headers['x-forwarded-proto'])}://${String(req.headers['x-forwarded-host'])}/next`)

t.test('behind a trusted proxy, requests told another scheme or host upstream do not share an entry', async t => {
  const r = await rig(t, linkBuilder, '{}', 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  trustProxy: [127.0.0.1]')
  const poisoned = await r.get('/p', { host: 'shop.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' })
  t.equal(poisoned.body, 'http://evil.example/next')
  t.match(cs(poisoned.headers), /; stored; /)
  const https = await r.get('/p', { host: 'shop.example', 'x-forwarded-proto': 'https' })
  t.equal(https.body, 'https://shop.example/next', 'another forwarded host: its own entry')
  t.match(cs(https.headers), /fwd=uri-miss/)
  const http = await r.get('/p', { host: 'shop.example', 'x-forwarded-proto': 'http' })
  t.equal(http.body, 'http://shop.example/next', 'another scheme: its own entry')
  const evilHttps = await r.get('/p', { host: 'shop.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' })
  t.equal(evilHttps.body, 'https://evil.example/next')
  t.equal(r.seen.length, 4)
  const again = await r.get('/p', { host: 'shop.example', 'x-forwarded-proto': 'https' })
  t.same([again.body, cs(again.headers).includes('; hit;')], ['https://shop.example/next', true], 'each is a hit for its own')
  const named = await r.get('/p', { host: 'shop.example', 'x-forwarded-host': 'shop.example', 'x-forwarded-proto': 'https' })
  t.same([named.body, cs(named.headers).includes('; hit;')], ['https://shop.example/next', true], 'the Host named again: the same entry')
  t.equal(r.seen.length, 4)
})

t.test('an untrusted client\'s X-Forwarded-Host and -Proto neither split nor poison an entry: the gateway replaces them', async t => {
  const r = await rig(t, linkBuilder)
  const first = await r.get('/p', { host: 'shop.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' })
  t.equal(first.body, 'http://shop.example/next')
  for (const fake of [{ 'x-forwarded-host': 'other.example' }, { 'x-forwarded-proto': 'https' }, {}] as Array<Record<string, string>>) {
    const res = await r.get('/p', { host: 'shop.example', ...fake })
    t.same([res.body, cs(res.headers).includes('; hit;')], ['http://shop.example/next', true], JSON.stringify(fake))
  }
  t.equal(r.seen.length, 1)
})
