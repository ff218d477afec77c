import type { ServerResponse } from 'node:http'
import t from 'tap'
import { fresh, rig } from '../../test/helpers/cache-rig.ts'

const send = (res: ServerResponse, headers: Record<string, string>, body: string) => {
  res.writeHead(200, { 'content-length': Buffer.byteLength(body), ...headers }).end(body)
}

const KEY = 'alice-key-0123456789'
const CONSUMERS = `consumers:
  - { id: alice, credentials: { key-auth: { keys: [ "${KEY}" ] } } }
  - { id: guest }
plugins: { key-auth: { anonymous: guest } }`

t.test('a request header value cannot pass for another Vary field: a guest never gets a consumer\'s variant', async t => {
  // Personalized for identified consumers (and said so in Vary); the guest page varies on the language only.
  const r = await rig(t, (req, res, n) => {
    const who = String(req.headers['x-consumer-id'])
    send(res, { 'cache-control': 'public, max-age=600', vary: who === 'guest' ? 'Accept-Language' : 'Accept-Language, X-Consumer-Id' }, `${who}'s page ${n}`)
  }, '{ cacheAuthorized: true }', CONSUMERS)
  t.match((await r.get('/home', { 'x-api-key': KEY, 'accept-language': 'en' })).cacheStatus, /stored/)
  const guest = await r.get('/home', { 'accept-language': 'en' })
  t.same([guest.body, fresh(guest.cacheStatus, 600)], ['guest\'s page 2', 'Portcullis; fwd=vary-miss; fwd-status=200; stored; ttl=600'], 'the marker now names Accept-Language only')
  const forged = await r.get('/home', { 'accept-language': 'en|h:x-consumer-id=alice' })
  t.notMatch(forged.body, /alice/, 'a value spelling out another field\'s part of the key finds nothing')
  t.notMatch(forged.cacheStatus, /hit/)
  t.equal((await r.get('/home', { 'x-api-key': KEY, 'accept-language': 'en' })).body, 'guest\'s page 2', 'alice gets the variant the marker names now (the upstream said it does not vary by consumer)')
})

t.test('the same with a header the upstream varies on, no auth', async t => {
  const r = await rig(t, (req, res, n) => {
    const user = req.headers['x-user']
    send(res, { 'cache-control': 'public, max-age=600', vary: user === undefined ? 'Accept-Language' : 'Accept-Language, X-User' }, `${String(user)} ${n}`)
  })
  await r.get('/p', { 'x-user': 'alice', 'accept-language': 'en' })
  await r.get('/p', { 'accept-language': 'en' })
  for (const al of ['en|h:x-user=alice', 'en%7ch:x-user=alice']) {
    const forged = await r.get('/p', { 'accept-language': al })
    t.notMatch(forged.body, /alice/, al)
  }
  t.match((await r.get('/p', { 'accept-language': 'en' })).cacheStatus, /^Portcullis; hit/, 'the plain variant is still served')
  // Two requests whose values, run together, read the same: two variants.
  t.match((await r.get('/q', { 'accept-language': 'en|h:x-user=bob', 'x-user': 'carol' })).body, /^carol \d+$/)
  const other = await r.get('/q', { 'accept-language': 'en', 'x-user': 'bob|h:x-user=carol' })
  t.match(other.body, /^bob\|h:x-user=carol \d+$/)
  t.equal(fresh(other.cacheStatus, 600), 'Portcullis; fwd=vary-miss; fwd-status=200; stored; ttl=600')
})

t.test('Vary naming a field every object has (__proto__, constructor): a header like any other', async t => {
  const r = await rig(t, (req, res, n) => send(res, { 'cache-control': 'max-age=600', vary: req.url === '/proto' ? '__proto__' : 'constructor' }, `${req.url as string} ${n}`))
  for (const path of ['/proto', '/constructor']) {
    const first = await r.get(path)
    t.same([first.status, fresh(first.cacheStatus, 600)], [200, 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=600'], path)
    const again = await r.get(path, { constructor: 'x' })
    t.equal(again.status, 200)
    if (path === '/proto') t.match(again.cacheStatus, /^Portcullis; hit/, 'no client can send __proto__: every request is the one variant')
    else t.match(again.cacheStatus, /fwd=vary-miss/, 'another value of Constructor: another variant')
    t.match((await r.get(path)).cacheStatus, /^Portcullis; hit/)
  }
})

t.test('a Vary field absent and the same field sent empty are two variants (RFC 9111 4.1)', async t => {
  const r = await rig(t, (req, res, n) => send(res, { 'cache-control': 'max-age=600', vary: 'X-T' }, `${req.headers['x-t'] === undefined ? 'absent' : `"${req.headers['x-t']}"`} ${n}`))
  t.match((await r.get('/p')).cacheStatus, /stored/)
  const empty = await r.get('/p', { 'x-t': '' })
  t.same([empty.body, fresh(empty.cacheStatus, 600)], ['"" 2', 'Portcullis; fwd=vary-miss; fwd-status=200; stored; ttl=600'], 'not the absent one\'s answer')
  t.same([(await r.get('/p')).body, (await r.get('/p', { 'x-t': '' })).body], ['absent 1', '"" 2'], 'each is a hit for its own')
})
