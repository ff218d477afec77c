import type { ServerResponse } from 'node:http'
import t from 'tap'
import { rig, type Handler } from '../../test/helpers/cache-rig.ts'
import { writeUserPlugin } from '../../test/helpers/user-plugin.ts'

// bypass.headers and bypass.cookies count in the request as it goes upstream (a plugin before the
// cache may rename or set one: the upstream answers for it) and in the client's (one a plugin
// removes was still sent): either skips the cache.

const send = (res: ServerResponse, body: string) => {
  res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'cache-control': 'public, max-age=60' }).end(body)
}
// The upstream echoes what it got of the headers bypass names.
const handler: Handler = (req, res, n) => send(res, `cookie=${String(req.headers.cookie)} debug=${String(req.headers['x-debug'])} ${n}`)
const CACHE = '{ bypass: { headers: [x-debug], cookies: [session] }, key: { headers: [x-tenant] } }'

t.test('a bypass header or cookie a plugin before the cache renames a client header onto skips the cache', async t => {
  const r = await rig(t, handler, CACHE, 'plugins: { request-headers: { rename: { x-dbg: x-debug, x-c: cookie } } }')
  const alice = await r.get('/p1c', { 'x-c': 'session=alice-secret' })
  t.same([alice.body, alice.cacheStatus], ['cookie=session=alice-secret debug=undefined 1', 'Portcullis; fwd=bypass'])
  const anon = await r.get('/p1c')
  t.same([anon.body, anon.cacheStatus.includes('fwd=uri-miss')], ['cookie=undefined debug=undefined 2', true], 'alice\'s answer was not stored')
  const dbg = await r.get('/p1d', { 'x-dbg': 'internals' })
  t.same([dbg.body, dbg.cacheStatus], ['cookie=undefined debug=internals 3', 'Portcullis; fwd=bypass'])
  t.equal((await r.get('/p1d')).body, 'cookie=undefined debug=undefined 4', 'the debug answer was not stored')
  // A renamed Cookie beside the client's own: the one the upstream gets holds the session.
  t.equal((await r.get('/p1e', { cookie: 'theme=dark', 'x-c': 'session=bob' })).cacheStatus, 'Portcullis; fwd=bypass')
  t.notMatch((await r.get('/p1e', { cookie: 'theme=dark' })).body, /session/, 'nor that one')
  // Other names: cached as before.
  await r.get('/p1f', { 'x-c': 'theme=dark' })
  t.match((await r.get('/p1f', { 'x-c': 'theme=dark' })).cacheStatus, /^Portcullis; hit/)
})

t.test('a Cookie a plugin before the cache sets or changes is read as the upstream gets it, a list of values included', async t => {
  const plugin = writeUserPlugin(t.testdir({}), 'session-from-query', 600,
    "{ onRequest: (req: any) => { const m = /[?&]as=(\\w+)/.exec(req.query); if (m) req.headers.cookie = m[1] === 'list' ? ['theme=dark', 'session=carol'] : 'session=' + m[1] } }")
  const r = await rig(t, handler, CACHE, `loadPlugins: [ "${plugin}" ]\nplugins: { session-from-query: {} }`)
  for (const query of ['?as=dave', '?as=list']) {
    const res = await r.get(`/s${query}`, { cookie: 'theme=dark' })
    t.same([res.cacheStatus, /session=\w+ debug/.test(res.body)], ['Portcullis; fwd=bypass', true], query)
  }
  t.match((await r.get('/s', { cookie: 'theme=dark' })).cacheStatus, /stored/, 'the client\'s own Cookie alone: cached')
})

t.test('a bypass header or cookie the client sent skips the cache though a plugin before it removes it', async t => {
  const plugin = writeUserPlugin(t.testdir({}), 'drop-session', 600,
    "{ onRequest: (req: any) => { delete req.headers.cookie } }")
  const r = await rig(t, handler, CACHE, `loadPlugins: [ "${plugin}" ]\nplugins: { drop-session: {}, request-headers: { remove: [x-debug] } }`)
  t.same(await Promise.all([r.get('/r', { 'x-debug': '1' }), r.get('/r', { cookie: 'session=erin' })]).then(a => a.map(x => x.cacheStatus)),
    ['Portcullis; fwd=bypass', 'Portcullis; fwd=bypass'])
  t.match((await r.get('/r')).cacheStatus, /fwd=uri-miss/, 'nothing stored')
})
