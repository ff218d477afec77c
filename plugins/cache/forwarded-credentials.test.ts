import type { ServerResponse } from 'node:http'
import t from 'tap'
import { rig, type Handler } from '../../test/helpers/cache-rig.ts'
import { writeUserPlugin } from '../../test/helpers/user-plugin.ts'

// RFC 9111 3.5 is about the request the upstream gets: an Authorization a plugin put there
// (request-headers' rename, a user's plugin) counts as the client's own does.

const send = (res: ServerResponse, cc: string, body: string) => {
  res.writeHead(200, { 'content-length': Buffer.byteLength(body), 'cache-control': cc }).end(body)
}
// The upstream answers for the Authorization it got.
const handler: Handler = (req, res, n) => send(res, req.url === '/public' ? 'public, max-age=60' : 'max-age=60', `for ${String(req.headers.authorization)} ${n}`)
const RENAME = 'plugins: { request-headers: { rename: { x-auth-token: authorization } } }'
const token = (who: string) => ({ 'x-auth-token': `Bearer ${who}` })

t.test('an Authorization request-headers renames a client header onto skips the cache, as the client\'s own does', async t => {
  const r = await rig(t, handler, '{}', RENAME)
  const alice = await r.get('/page', token('alice'))
  t.same([alice.body, alice.cacheStatus], ['for Bearer alice 1', 'Portcullis; fwd=bypass; detail=credentials'])
  const anon = await r.get('/page')
  t.equal(anon.body, 'for undefined 2', 'a client without credentials does not get alice\'s answer')
  const bob = await r.get('/page', token('bob'))
  t.same([bob.body, bob.cacheStatus], ['for Bearer bob 3', 'Portcullis; fwd=bypass; detail=credentials'], 'nor does bob get the stored one')
})

t.test('with cacheAuthorized, an answer to a renamed Authorization is stored only when public, s-maxage or must-revalidate', async t => {
  const r = await rig(t, handler, '{ cacheAuthorized: true }', RENAME)
  t.match((await r.get('/plain', token('alice'))).cacheStatus, /fwd=uri-miss; fwd-status=200; detail=uncacheable$/)
  t.equal((await r.get('/plain', token('bob'))).body, 'for Bearer bob 2', 'bob does not get alice\'s answer')
  t.equal((await r.get('/plain')).body, 'for undefined 3', 'nor does a client without credentials')
  await r.get('/public', token('alice'))
  t.match((await r.get('/public', token('bob'))).cacheStatus, /^Portcullis; hit/, 'public: shared, as the RFC allows')
})

t.test('an Authorization a plugin after the cache sets: its answer is not stored without public, s-maxage or must-revalidate', async t => {
  const plugin = writeUserPlugin(t.testdir({}), 'session-token', 100,
    "{ onRequest: (req: any) => { const m = /session=(\\w+)/.exec(req.headers.cookie ?? ''); if (m) req.headers.authorization = 'Bearer ' + m[1] } }")
  const r = await rig(t, handler, '{}', `loadPlugins: [ "${plugin}" ]\nplugins: { session-token: {} }`)
  t.match((await r.get('/page', { cookie: 'session=alice' })).cacheStatus, /fwd=uri-miss; fwd-status=200; detail=uncacheable$/)
  t.equal((await r.get('/page', { cookie: 'session=bob' })).body, 'for Bearer bob 2', 'bob does not get alice\'s answer')
  t.equal((await r.get('/page')).body, 'for undefined 3')
  t.match((await r.get('/page')).cacheStatus, /^Portcullis; hit/, 'a request the upstream got without credentials is stored')
  await r.get('/public', { cookie: 'session=alice' })
  t.match((await r.get('/public', { cookie: 'session=bob' })).cacheStatus, /^Portcullis; hit/, 'public: stored')
})
