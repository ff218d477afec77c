import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { rig } from '../../test/helpers/cache-rig.ts'
import { callUntil, until } from '../../test/helpers/wait.ts'

// bypass.cookies, bypass.headers, key.headers and Vary compare names as upstreams read them: a
// cookie name with spaces around it, another case or PHP's spelling, a header name with `_` for `-`
// (CGI, WSGI, Rack and PHP servers read X_Preview as X-Preview) is the same name there.

const send = (res: ServerResponse, headers: Record<string, string>, body: string) => {
  res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=60', ...headers }).end(body)
}

/** Cookies as the cookie package and Express read them: split at `;`, names trimmed. */
function cookies (h: IncomingMessage['headers']): Map<string, string> {
  const jar = new Map<string, string>()
  for (const pair of String(h.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
  }
  return jar
}

t.test('bypass.cookies: a name as servers read it skips the cache, whitespace, case, `,`, escapes and PHP\'s forms included', async t => {
  const r = await rig(t, (req, res, n) => {
    const who = cookies(req.headers).get('session')
    send(res, {}, who === undefined ? `guest page ${n}` : `${who}'s draft ${n}`)
  }, '{ bypass: { cookies: [session, my_id] } }')
  const spellings = ['theme=dark; session =mallory', 'session\t=mallory', 'theme=dark;session\t =mallory', ' session=mallory', 'theme=dark, session=mallory',
    'SESSION=mallory', 'Session=mallory', '%73ession=mallory', 'session[x]=mallory', 'session', 'theme=dark; session', 'my.id=1', 'my id=1', 'my+id=1',
    'my%2Eid=1', 'MY_ID=1', 'my_id[]=1']
  for (const [i, cookie] of spellings.entries()) {
    const path = `/c/${i}`
    t.equal((await r.get(path, { cookie })).cacheStatus, 'Portcullis; fwd=bypass', JSON.stringify(cookie))
    const guest = await r.get(path)
    t.same([guest.body.startsWith('guest page'), guest.cacheStatus.includes('fwd=uri-miss')], [true, true], `${JSON.stringify(cookie)}: nothing stored for guests`)
  }
  // Names that are others to every server: cached as before.
  for (const cookie of ['sessions=1', 'xsession=1', 'theme=session', 'theme=session; a=b', 'my-id=1', 'myid=1', 'a=%73ession', 'a=b+c']) {
    const res = await r.get('/guest', { cookie })
    t.match(res.cacheStatus, /^Portcullis; (hit|fwd=uri-miss; fwd-status=200; stored)/, cookie)
  }
  t.equal(r.seen.filter(s => s.url === '/guest').length, 1)
})

t.test('a `_` spelling of a bypass header skips the cache; of a key header too', async t => {
  // As a CGI server hands the headers over: HTTP_X_PREVIEW from X-Preview or X_Preview.
  const cgi = (h: IncomingMessage['headers'], name: string) => h[name] ?? h[name.replaceAll('-', '_')]
  const r = await rig(t, (req, res, n) => {
    const preview = cgi(req.headers, 'x-preview') !== undefined
    send(res, {}, `${preview ? 'draft' : 'published'} for ${String(cgi(req.headers, 'x-tenant'))} ${n}`)
  }, '{ bypass: { headers: [X-Preview] }, key: { headers: [x-tenant] } }')
  for (const [i, headers] of ([{ x_preview: '1' }, { X_Preview: '1' }, { x_tenant: 'evil' }, { 'x-tenant': 'acme', x_tenant: 'evil' }] as Array<Record<string, string>>).entries()) {
    const path = `/h/${i}`
    t.equal((await r.get(path, headers)).cacheStatus, 'Portcullis; fwd=bypass', JSON.stringify(headers))
    const plain = await r.get(path)
    t.same([plain.body, plain.cacheStatus.includes('fwd=uri-miss')], [`published for undefined ${r.seen.length}`, true], `${JSON.stringify(headers)}: nothing stored for others`)
  }
  // Other names with `_` change nothing.
  t.match((await r.get('/h/0', { x_other: '1' })).cacheStatus, /; hit;/)
  t.match((await r.get('/h/0', { 'x-tenant': 'acme' })).cacheStatus, /stored/, 'the key header as configured is keyed')
})

t.test('a key header configured with `_`: its dashed spelling skips the cache', async t => {
  const r = await rig(t, (req, res, n) => send(res, {}, `for ${String(req.headers.x_tenant ?? req.headers['x-tenant'])} ${n}`), '{ key: { headers: [x_tenant] } }')
  t.equal((await r.get('/p', { 'x-tenant': 'evil' })).cacheStatus, 'Portcullis; fwd=bypass')
  t.match((await r.get('/p', { x_tenant: 'acme' })).cacheStatus, /stored/)
  t.same([(await r.get('/p')).body, r.seen.length], ['for undefined 3', 3])
})

t.test('a response whose Vary names a header the request holds a `_` spelling of is not stored', async t => {
  // Reads the tenant as HTTP_X_TENANT does, and says it varies on X-Tenant.
  const r = await rig(t, (req, res, n) => send(res, { vary: 'X-Tenant' }, `tenant ${String(req.headers['x-tenant'] ?? req.headers.x_tenant)} ${n}`))
  const evil = await r.get('/v', { X_Tenant: 'evil' })
  t.same([evil.body, evil.cacheStatus], ['tenant evil 1', 'Portcullis; fwd=uri-miss; fwd-status=200; detail=vary-spelling'])
  const pub = await r.get('/v')
  t.same([pub.body, pub.cacheStatus.includes('stored')], ['tenant undefined 2', true], 'the public request gets its own answer')
  t.match((await r.get('/v', { x_other: '1' })).cacheStatus, /; hit;/, 'another name with `_` changes nothing')
  t.match((await r.get('/v', { 'x-tenant': 'acme' })).cacheStatus, /stored/, 'the header as named: a variant of its own')
  // A revalidation of a stored variant by such a request stores nothing either.
  const stale = await rig(t, (req, res, n) => {
    if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"', 'cache-control': 'public, max-age=60', vary: 'X-Tenant' }).end(); return }
    send(res, { vary: 'X-Tenant', etag: '"v1"', 'cache-control': 'public, max-age=0' }, `tenant ${String(req.headers['x-tenant'] ?? req.headers.x_tenant)} ${n}`)
  })
  await stale.get('/s')
  t.match((await stale.get('/s', { X_Tenant: 'evil' })).cacheStatus, /fwd-status=304; detail=vary-spelling/)
  t.notMatch((await stale.get('/s')).cacheStatus, /; hit;/, 'not freshened for the others')
})

t.test('bypass.cookies: a name after whitespace skips the cache, as Python\'s SimpleCookie ends a pair there', async t => {
  // aiohttp, Bottle and CherryPy: `theme=dark session=mallory` holds theme and session.
  const simpleCookie = (h: IncomingMessage['headers']) => new Map(String(h.cookie ?? '').split(/[;\s]+/).filter(p => p.includes('=')).map(p => p.split('=', 2) as [string, string]))
  const r = await rig(t, (req, res, n) => {
    const who = simpleCookie(req.headers).get('session')
    send(res, {}, who === undefined ? `guest page ${n}` : `${who}'s draft ${n}`)
  }, '{ bypass: { cookies: [session, my_id] } }')
  for (const [i, cookie] of ['theme=dark session=mallory', 'theme=dark\tsession=mallory', 'a=1 session=mallory; b=2', 'a=1  \t session=mallory', 'theme=dark %73ession=mallory',
    'a=1 SESSION=mallory', 'a=1 session[x]=mallory', 'a=1 my.id=1', 'my id=1'].entries()) {
    const path = `/w/${i}`
    t.equal((await r.get(path, { cookie })).cacheStatus, 'Portcullis; fwd=bypass', JSON.stringify(cookie))
    const guest = await r.get(path)
    t.same([guest.body.startsWith('guest page'), guest.cacheStatus.includes('fwd=uri-miss')], [true, true], `${JSON.stringify(cookie)}: nothing stored for guests`)
  }
  for (const cookie of ['theme=dark sessions=1', 'a=b c', 'a=1 xsession=2', 'a=b\tmy-id=1']) {
    t.match((await r.get('/guest', { cookie })).cacheStatus, /^Portcullis; (hit|fwd=uri-miss; fwd-status=200; stored)/, cookie)
  }
  t.equal(r.seen.filter(s => s.url === '/guest').length, 1)
})

t.test('a request with another spelling of a varied field leaves the stored entry as it is: any client can send one', async t => {
  // Vary: X-Tenant, stale at once, revalidated with its ETag; `x_tenant` is X-Tenant to the upstream.
  const r = await rig(t, (req, res, n) => {
    const cc = req.url?.startsWith('/swr') === true ? 'public, max-age=0, stale-while-revalidate=60' : 'public, max-age=0'
    const tenant = String(req.headers['x-tenant'] ?? req.headers.x_tenant)
    if (req.url?.startsWith('/200') === true && tenant === 'evil') { send(res, { vary: 'X-Tenant', etag: '"evil"', 'cache-control': cc }, 'tenant evil'); return }
    // A HEAD's 200 that describes the stored GET (RFC 9111 4.3.5).
    if (req.method === 'HEAD') { res.writeHead(200, { etag: '"v1"', 'cache-control': cc, vary: 'X-Tenant', 'content-length': 11 }).end(); return }
    if (req.headers['if-none-match'] === '"v1"') { res.writeHead(304, { etag: '"v1"', 'cache-control': cc, vary: 'X-Tenant' }).end(); return }
    send(res, { vary: 'X-Tenant', etag: '"v1"', 'cache-control': cc }, `public ${n % 10}`.padEnd(11))
  })
  // A 304 to its revalidation (GET and HEAD), a 200 of its own.
  for (const [path, method, fwdStatus] of [['/304', 'GET', 304], ['/head', 'HEAD', 200], ['/200', 'GET', 200]] as const) {
    t.match((await r.get(path)).cacheStatus, /stored/, path)
    const evil = await r.get(path, { x_tenant: 'evil' }, method)
    t.equal(evil.cacheStatus, `Portcullis; fwd=stale; fwd-status=${fwdStatus}; detail=vary-spelling`, `${path}: not stored`)
    t.match((await r.get(path)).cacheStatus, /^Portcullis; fwd=stale; fwd-status=304; stored/, `${path}: the others' entry is still there, revalidated`)
  }
  // A background revalidation (stale-while-revalidate) with such a request's headers.
  t.match((await r.get('/swr')).cacheStatus, /stored/)
  const refresh = r.seen.length
  t.match((await r.get('/swr', { x_tenant: 'evil' })).cacheStatus, /^Portcullis; hit/)
  t.ok(await until(() => r.seen[refresh]?.headers.x_tenant === 'evil'), 'revalidated in the background')
  // Once that revalidation is over, the next plain request's stale hit revalidates again: the entry was kept.
  t.ok(await callUntil(() => r.get('/swr'), () => r.seen.length > refresh + 1, 5_000))
  const next = r.seen[refresh + 1]
  t.same([next?.headers['if-none-match'], next?.headers.x_tenant], ['"v1"', undefined], 'a revalidation of the entry kept, not a miss')
})

t.test('a request with many header names with `_` is taken for one holding another spelling: the checks are bounded', async t => {
  const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x_n${i}`, '1']))
  const few = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x_n${i}`, '1']))
  const bypassing = await rig(t, (req, res, n) => send(res, {}, `page ${n}`), '{ bypass: { headers: [X-Preview] } }')
  t.equal((await bypassing.get('/p', many)).cacheStatus, 'Portcullis; fwd=bypass')
  t.match((await bypassing.get('/p', few)).cacheStatus, /stored/, 'fewer are compared')
  const varying = await rig(t, (req, res, n) => send(res, { vary: 'X-Tenant' }, `page ${n}`))
  t.equal((await varying.get('/v', many)).cacheStatus, 'Portcullis; fwd=uri-miss; fwd-status=200; detail=vary-spelling')
  t.match((await varying.get('/v', few)).cacheStatus, /stored/, 'fewer are compared')
})
