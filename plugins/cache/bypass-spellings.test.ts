import type { IncomingMessage, ServerResponse } from 'node:http'
import t from 'tap'
import { rig } from '../../test/helpers/cache-rig.ts'

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
