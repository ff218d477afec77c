import t from 'tap'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { startGateway } from '../../../test/helpers/gateway.ts'
import { startUpstream } from '../../../test/helpers/upstream.ts'

// Made with `portcullis hash-password --cost 10` from "alice-password".
const ALICE_HASH = '$scrypt$ln=10,r=8,p=1$XasJBFIR0c0WvAIhHno1Dg$S4lyfMpVdZkwv6VhnNzxSrD5XXP2CqzrBjxZU8KoXsI'
const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ALICE_KEY = 'alice-key-0123456789abcdef'

const up = await startUpstream()
t.teardown(() => up.close())
const route = (name: string, plugins: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: ${plugins} }`
const gw = await startGateway(`
consumers:
  - { id: alice, credentials: { key-auth: { keys: [ ${ALICE_KEY} ] }, basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
  - { id: guest }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('all-hidden', `{ jwt-auth: { secret: "${SECRET}", hideCredentials: true, from: [ { header: authorization, scheme: Bearer }, { query: access_token } ] }, key-auth: { hideCredentials: true, query: api_key }, basic-auth: { hideCredentials: true } }`)}
${route('jwt-hidden', `{ jwt-auth: { secret: "${SECRET}", hideCredentials: true }, basic-auth: {} }`)}
${route('anonymous', '{ key-auth: { hideCredentials: true, anonymous: guest }, basic-auth: { hideCredentials: true, anonymous: guest } }')}
${route('optional', `{ jwt-auth: { secret: "${SECRET}", hideCredentials: true, optional: true } }`)}
${route('none-hidden', '{ key-auth: { query: api_key }, basic-auth: {} }')}
${route('jwt-and-key', `{ jwt-auth: { secret: "${SECRET}" }, key-auth: { query: api_key } }`)}
${route('shared-header', `{ jwt-auth: { secret: "${SECRET}", from: [ { header: x-k, scheme: Bearer } ] }, key-auth: { header: x-k } }`)}
`)
t.teardown(() => gw.close())

async function call (path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, json: JSON.parse(text) as { url: string, headers: Record<string, string | undefined> } }
}
const token = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

t.test('hideCredentials: every auth plugin with it removes its credential, whichever plugin decides', async t => {
  const byToken = await call('/all-hidden', { authorization: `Bearer ${token}`, 'x-api-key': ALICE_KEY })
  t.equal(byToken.status, 200)
  t.equal(byToken.json.headers['x-consumer-id'], 'bob', 'jwt-auth decided')
  t.equal(byToken.json.headers.authorization, undefined)
  t.equal(byToken.json.headers['x-api-key'], undefined, 'key-auth\'s key removed too')

  const byKey = await call('/all-hidden', { 'x-api-key': ALICE_KEY, authorization: basic('alice', 'alice-password') })
  t.equal(byKey.status, 200)
  t.equal(byKey.json.headers['x-api-key'], undefined)
  t.equal(byKey.json.headers.authorization, undefined, 'basic-auth\'s password removed though key-auth decided')

  const byQuery = await call(`/all-hidden?a=1&access_token=${token}&api_key=${ALICE_KEY}&b=2`)
  t.equal(byQuery.status, 200)
  t.equal(byQuery.json.headers['x-consumer-id'], 'bob')
  t.equal(byQuery.json.url, '/all-hidden?a=1&b=2', 'both query parameters removed')
})

t.test('hideCredentials removes only its own scheme from a shared header', async t => {
  const r = await call('/jwt-hidden', { authorization: basic('alice', 'alice-password') })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'alice')
  t.equal(r.json.headers.authorization, basic('alice', 'alice-password'), 'basic-auth keeps its credentials; jwt-auth hides only Bearer')
  const bearer = await call('/jwt-hidden', { authorization: `Bearer ${token}` })
  t.equal(bearer.json.headers.authorization, undefined)
})

t.test('hideCredentials on an anonymous request: an empty credential goes too', async t => {
  const r = await call('/anonymous', { 'x-api-key': '' })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'guest')
  t.equal(r.json.headers['x-anonymous-consumer'], 'true')
  t.notOk('x-api-key' in r.json.headers, 'key-auth removed its (empty) header')
})

t.test('a tab after the scheme (Bearer<TAB>token): the credential is verified and hidden, not taken for none and passed on unverified', async t => {
  const bearer = await call('/optional', { authorization: `Bearer\t${token}` })
  t.equal(bearer.status, 200)
  t.equal(bearer.json.headers['x-consumer-id'], 'bob', 'verified')
  t.equal(bearer.json.headers.authorization, undefined, 'hidden')
  const forged = await call('/optional', { authorization: `Bearer\t${token.slice(0, -2)}xx` })
  t.equal(forged.status, 401, 'a bad token is refused, as after a space')
  const basicTab = await call('/anonymous', { authorization: `Basic\t${Buffer.from('alice:alice-password').toString('base64')}` })
  t.equal(basicTab.status, 200)
  t.equal(basicTab.json.headers['x-consumer-id'], 'alice', 'basic-auth reads it the same way (the same code)')
  t.equal(basicTab.json.headers.authorization, undefined)
  t.equal((await call('/anonymous', { authorization: `Basic\t${Buffer.from('alice:wrong').toString('base64')}` })).status, 401)
})

t.test('without hideCredentials: the credentials of the route\'s other auth plugins go once one decides (unchecked), its own stays', async t => {
  const byKey = await call('/none-hidden?api_key=forged&a=1', { 'x-api-key': ALICE_KEY, authorization: basic('admin', 'not-the-password') })
  t.equal(byKey.status, 200)
  t.equal(byKey.json.headers['x-consumer-id'], 'alice', 'key-auth decided')
  t.equal(byKey.json.headers['x-api-key'], ALICE_KEY, 'its own key kept: no hideCredentials')
  t.equal(byKey.json.headers.authorization, undefined, 'the Basic password no one checked removed')
  t.equal(byKey.json.url, '/none-hidden?a=1', 'as is key-auth\'s own query key beside its header (one plugin\'s locations)')

  const byPassword = await call('/none-hidden', { 'x-api-key': '', authorization: basic('alice', 'alice-password') })
  t.equal(byPassword.status, 200)
  t.equal(byPassword.json.headers['x-consumer-id'], 'alice', 'basic-auth decided')
  t.equal(byPassword.json.headers.authorization, basic('alice', 'alice-password'), 'its own credentials kept')
  t.notOk('x-api-key' in byPassword.json.headers, 'key-auth\'s (empty) header removed, though key-auth ran first')

  const byToken = await call(`/jwt-and-key?api_key=${ALICE_KEY}&b=2`, { authorization: `Bearer ${token}`, 'x-api-key': 'forged-key-0123456789' })
  t.equal(byToken.status, 200)
  t.equal(byToken.json.headers['x-consumer-id'], 'bob', 'jwt-auth decided')
  t.equal(byToken.json.headers.authorization, `Bearer ${token}`)
  t.equal(byToken.json.headers['x-api-key'], undefined, 'key-auth\'s key removed')
  t.equal(byToken.json.url, '/jwt-and-key?b=2', 'its query key too')

  const shared = await call('/shared-header', { 'x-k': `Bearer ${token}` })
  t.equal(shared.json.headers['x-consumer-id'], 'bob', 'jwt-auth decided on the header key-auth reads whole')
  t.equal(shared.json.headers['x-k'], `Bearer ${token}`, 'the header the deciding credential came from is not another plugin\'s to remove')
  t.equal((await call('/shared-header', { 'x-k': ALICE_KEY })).json.headers['x-consumer-id'], 'alice', 'key-auth reads the rest')

  const bad = await call('/none-hidden', { 'x-api-key': 'forged-key-0123456789', authorization: basic('alice', 'alice-password') })
  t.equal(bad.status, 401, 'the first credential decides: a bad key is not rescued by a good password')
})
