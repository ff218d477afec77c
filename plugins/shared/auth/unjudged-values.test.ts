import t from 'tap'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { startGateway } from '../../../test/helpers/gateway.ts'
import { b64url } from '../../../test/helpers/identity-provider.ts'
import { startUpstream } from '../../../test/helpers/upstream.ts'

// What an auth plugin did not judge never reaches the upstream: a value at another of its
// locations, a malformed one taken for none, its header under a `_` spelling.

// Made with `portcullis hash-password --cost 10` from "alice-password".
const ALICE_HASH = '$scrypt$ln=10,r=8,p=1$XasJBFIR0c0WvAIhHno1Dg$S4lyfMpVdZkwv6VhnNzxSrD5XXP2CqzrBjxZU8KoXsI'
const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ALICE_KEY = 'alice-key-0123456789abcdef'
const BOB_KEY = 'bob-key-0123456789abcdef'

const up = await startUpstream()
t.teardown(() => up.close())
const route = (name: string, plugins: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: ${plugins} }`
const jwt = (options = '') => `jwt-auth: { secret: "${SECRET}"${options} }`
const gw = await startGateway(`
consumers:
  - { id: alice, credentials: { key-auth: { keys: [ ${ALICE_KEY} ] }, basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
  - { id: bob, credentials: { key-auth: { keys: [ ${BOB_KEY} ] } } }
  - { id: guest }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('multi', `{ ${jwt(', from: [ { header: authorization, scheme: Bearer }, { query: access_token }, { cookie: session } ]')} }`)}
${route('cookie', `{ ${jwt(', optional: true, from: [ { header: authorization, scheme: Bearer }, { cookie: session } ]')} }`)}
${route('required', `{ ${jwt(', from: [ { header: authorization, scheme: Bearer }, { cookie: session } ]')} }`)}
${route('ws', `{ ${jwt(', from: [ { header: authorization, scheme: Bearer }, { header: sec-websocket-protocol } ]')} }`)}
${route('keys', '{ key-auth: { query: api_key } }')}
${route('mixed', `{ ${jwt(', from: [ { header: authorization, scheme: Bearer }, { cookie: access_token }, { query: access_token } ]')} }`)}
${route('spring', `{ ${jwt(', anonymous: guest, from: [ { header: authorization, scheme: Bearer }, { cookie: session } ]')} }`)}
${route('query-anonymous', `{ ${jwt(', anonymous: guest, from: [ { header: authorization, scheme: Bearer }, { query: access_token } ]')} }`)}
${route('keys-chain', `{ ${jwt()}, key-auth: { query: api_key, anonymous: guest } }`)}
${route('optional', `{ ${jwt(', optional: true')} }`)}
${route('anonymous', `{ ${jwt(', anonymous: guest')}, basic-auth: { anonymous: guest }, key-auth: { anonymous: guest } }`)}
${route('chain', `{ ${jwt()}, key-auth: {} }`)}
`)
t.teardown(() => gw.close())

async function call (path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const json = await res.body.json() as { url: string, headers: Record<string, string | undefined>, error?: string }
  return { status: res.statusCode, json }
}
const alice = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
const forged = `${b64url({ alg: 'none' })}.${b64url({ sub: 'admin' })}.`

t.test('jwt-auth: the token that decided goes on as sent; a value at another `from` location is removed', async t => {
  const query = await call(`/multi?a=1&access_token=${forged}&b=2`, { authorization: `Bearer ${alice}` })
  t.equal(query.status, 200)
  t.equal(query.json.headers['x-consumer-id'], 'alice')
  t.equal(query.json.url, '/multi?a=1&b=2', 'the forged query parameter removed')
  t.equal(query.json.headers.authorization, `Bearer ${alice}`, 'the verified token kept (no hideCredentials)')

  const cookie = await call('/multi', { authorization: `Bearer ${alice}`, cookie: `a=1; session=${forged}; b=2` })
  t.equal(cookie.status, 200, 'not refused: a browser may send a stale cookie beside a fresh header')
  t.equal(cookie.json.headers.cookie, 'a=1; b=2', 'the cookie removed, the others kept')

  const byCookie = await call(`/multi?access_token=${forged}`, { cookie: `session=${alice}` })
  t.equal(byCookie.status, 401, 'an earlier location decides, the forged token refused')
  const byLater = await call('/multi?x=1', { authorization: 'Basic YTpi', cookie: `session=${alice}` })
  t.equal(byLater.status, 200)
  t.same([byLater.json.headers.authorization, byLater.json.headers.cookie], ['Basic YTpi', `session=${alice}`], 'another scheme is no value of the plugin\'s: kept')
})

t.test('jwt-auth: copies at another location behind a `;` in the query, a `,` in Cookie, or as an array, removed too', async t => {
  const semicolon = await call(`/multi?x=1;access_token=${forged}&y=2`, { authorization: `Bearer ${alice}` })
  t.same([semicolon.status, semicolon.json.url], [200, '/multi?x=1&y=2'], 'Rack 2, Perl\'s CGI and old Go read it as access_token')
  const comma = await call('/multi', { authorization: `Bearer ${alice}`, cookie: `a=1, session=${forged}; b=2` })
  t.same([comma.status, comma.json.headers.cookie], [200, 'a=1; b=2'], 'Rack 2 reads it as the session cookie')
  const array = await call(`/multi?access_token[]=${forged}&access_token[x]=${forged}&x=1`, { authorization: `Bearer ${alice}`, cookie: `session[]=${forged}; b=2` })
  t.same([array.status, array.json.url, array.json.headers.cookie], [200, '/multi?x=1', 'b=2'], 'PHP reads `access_token[]` as $_GET[\'access_token\']')
  const alone = await call(`/multi?access_token[]=${alice}`)
  t.same([alone.status, alone.json.error], [401, 'invalid_token'], 'an array is no token: malformed where it decides')
})

t.test('a bare name behind a `,` in Cookie or a `;` in the query is part of the value before it: no copy of the credential', async t => {
  const none = await call('/cookie', { cookie: 'consent=ads,session; theme=dark' })
  t.same([none.status, none.json.headers?.['x-consumer-id'], none.json.headers?.cookie], [200, undefined, 'consent=ads,session; theme=dark'], 'optional: no token, the cookies as sent')
  const required = await call('/required', { cookie: `session=${alice}; consent=ads,session` })
  t.same([required.status, required.json.headers?.['x-consumer-id'], required.json.headers?.cookie], [200, 'alice', `session=${alice}; consent=ads,session`], 'the one session cookie decides')
  const bearer = await call('/required', { authorization: `Bearer ${alice}`, cookie: `consent=ads,session; session=${forged},x; b=2` })
  t.same([bearer.status, bearer.json.headers?.cookie], [200, 'consent=ads,session; b=2'], 'a third party\'s value kept as sent; the unjudged cookie removed with all its value')
  const query = await call(`/keys?next=/a;api_key&api_key=${ALICE_KEY}`)
  t.same([query.status, query.json.headers?.['x-consumer-id'], query.json.url], [200, 'alice', `/keys?next=/a;api_key&api_key=${ALICE_KEY}`], 'not "sent more than once"')
})

t.test('cookie names are case-sensitive: Spring Session\'s SESSION beside a `session` token is another cookie, never read, refused or removed', async t => {
  const spring = 'SESSION=YzQ2ZjI1NjMtNWE1Ni00'
  const alone = await call('/spring', { cookie: spring })
  t.same([alone.status, alone.json.headers?.['x-consumer-id'], alone.json.headers?.cookie], [200, 'guest', spring], 'alone: no token, anonymous, the cookie forwarded')
  const before = await call('/spring', { cookie: `${spring}; session=${alice}` })
  t.same([before.status, before.json.headers?.['x-consumer-id'], before.json.headers?.cookie], [200, 'alice', `${spring}; session=${alice}`], 'before the token: the token decides, both forwarded')
  const after = await call('/spring', { cookie: `session=${alice}; ${spring}` })
  t.same([after.status, after.json.headers?.['x-consumer-id'], after.json.headers?.cookie], [200, 'alice', `session=${alice}; ${spring}`], 'after the token: no copy, kept')
  const bearer = await call('/spring', { authorization: `Bearer ${alice}`, cookie: `${spring}; session=${forged}` })
  t.same([bearer.status, bearer.json.headers?.['x-consumer-id'], bearer.json.headers?.cookie], [200, 'alice', spring], 'Authorization decides: the session cookie removed, Spring\'s kept')
})

t.test('a query parameter in another case (ASP.NET reads it as the name) is never the credential, refused beside it, and removed whatever decides', async t => {
  const lone = await call(`/query-anonymous?ACCESS_TOKEN=${alice}&x=1`)
  t.same([lone.status, lone.json.headers?.['x-consumer-id'], lone.json.url], [200, 'guest', '/query-anonymous?x=1'], 'alone: no token, anonymous, removed (the upstream never gets an unchecked credential)')
  const required = await call(`/mixed?ACCESS_TOKEN=${alice}`)
  t.same([required.status, required.json.error], [401, 'unauthorized'], 'alone on a route without anonymous: no token')
  const beside = await call(`/query-anonymous?access_token=${alice}&ACCESS_TOKEN=${forged}`)
  t.same([beside.status, beside.json.error], [401, 'invalid_token'], 'beside the name: sent twice, malformed')
  const exact = await call(`/query-anonymous?x=1&access_token=${alice}`)
  t.same([exact.status, exact.json.headers?.['x-consumer-id'], exact.json.url], [200, 'alice', `/query-anonymous?x=1&access_token=${alice}`], 'the name as written: the token, forwarded')
  for (const name of ['ACCESS_TOKEN', 'Access_Token']) {
    const r = await call(`/mixed?x=1&${name}=${forged}`, { authorization: `Bearer ${alice}`, cookie: `a=1; ${name}=S` })
    t.same([r.status, r.json.headers['x-consumer-id'], r.json.url, r.json.headers.cookie], [200, 'alice', '/mixed?x=1', `a=1; ${name}=S`], `the header decides: ?${name}= removed, the cookie ${name} kept`)
  }
  const cookie = await call(`/mixed?ACCESS_TOKEN=${forged}`, { cookie: `access_token=${alice}; Access_Token=S` })
  t.same([cookie.status, cookie.json.headers['x-consumer-id'], cookie.json.url, cookie.json.headers.cookie], [200, 'alice', '/mixed', `access_token=${alice}; Access_Token=S`], 'the cookie decides: the query parameter in another case removed')
  const key = await call(`/keys?API_KEY=${BOB_KEY}&x=1&Api_Key=${BOB_KEY}`, { 'x-api-key': ALICE_KEY })
  t.same([key.status, key.json.headers['x-consumer-id'], key.json.url], [200, 'alice', '/keys?x=1'], 'key-auth: bob\'s key in another case not forwarded')
  const chain = await call(`/keys-chain?API_KEY=${BOB_KEY}&x=1`, { authorization: `Bearer ${alice}` })
  t.same([chain.status, chain.json.headers['x-consumer-id'], chain.json.url], [200, 'alice', '/keys-chain?x=1'], 'another plugin decides: removed by key-auth')
  const anonymous = await call(`/keys-chain?API_KEY=${BOB_KEY}`)
  t.same([anonymous.status, anonymous.json.headers['x-consumer-id'], anonymous.json.url], [200, 'guest', '/keys-chain'], 'no credential: anonymous, removed')
})

t.test('a query left with only separators once a copy is removed goes on without a stray `?`', async t => {
  for (const path of [`/keys?;api_key=${BOB_KEY}`, `/keys?&api_key=${BOB_KEY}`]) {
    const r = await call(path, { 'x-api-key': ALICE_KEY })
    t.same([r.status, r.json.headers['x-consumer-id'], r.json.url], [200, 'alice', '/keys'], path)
  }
})

t.test('jwt-auth: a subprotocol offered in Sec-WebSocket-Protocol stays when Authorization decides', async t => {
  const r = await call('/ws', { authorization: `Bearer ${alice}`, 'sec-websocket-protocol': 'graphql-ws' })
  t.same([r.status, r.json.headers['x-consumer-id'], r.json.headers['sec-websocket-protocol']], [200, 'alice', 'graphql-ws'], 'the upstream can select it: graphql-ws clients go on')
  const ws = await call('/ws', { 'sec-websocket-protocol': alice })
  t.same([ws.status, ws.json.headers['x-consumer-id'], ws.json.headers['sec-websocket-protocol']], [200, 'alice', alice], 'the token there decides when Authorization has none')
})

t.test('key-auth: a key in the header decides; one in the query parameter is removed', async t => {
  const r = await call(`/keys?api_key=${BOB_KEY}&x=1`, { 'x-api-key': ALICE_KEY })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'alice')
  t.equal(r.json.url, '/keys?x=1', 'bob\'s key not forwarded')
  t.equal(r.json.headers['x-api-key'], ALICE_KEY)
  const split = await call(`/keys?x=1;api_key=${BOB_KEY}&api_key[]=${BOB_KEY}`, { 'x-api-key': ALICE_KEY })
  t.same([split.status, split.json.headers['x-consumer-id'], split.json.url], [200, 'alice', '/keys?x=1'], 'behind a `;`, or as PHP\'s array: removed too')
  const array = await call(`/keys?api_key[]=${BOB_KEY}`)
  t.same([array.status, array.json.error], [401, 'invalid_credentials'], 'an array alone: malformed, not bob\'s key')
})

t.test('the scheme followed by anything but a space or tab is a malformed credential, not none: 401 on optional and anonymous routes too', async t => {
  for (const value of [`Bearer\u00a0${forged}`, `Bearer,${forged}`, `Bearer${forged}`, 'Bearer,']) {
    const optional = await call('/optional', { authorization: value })
    t.equal(optional.status, 401, `optional: ${JSON.stringify(value.slice(0, 8))}`)
    t.equal(optional.json.error, 'invalid_token')
    t.equal((await call('/anonymous', { authorization: value })).status, 401, `anonymous: ${JSON.stringify(value.slice(0, 8))}`)
  }
  const basic = await call('/anonymous', { authorization: `Basic\u00a0${Buffer.from('alice:alice-password').toString('base64')}` })
  t.equal(basic.status, 401, 'basic-auth reads it the same way')
  t.equal(basic.json.error, 'invalid_credentials')
  const none = await call('/anonymous', { authorization: 'Digest x' })
  t.same([none.status, none.json.headers['x-consumer-id'], none.json.headers.authorization], [200, 'guest', 'Digest x'], 'another scheme is still no credential of theirs')
  // An app sends `Bearer ${token ?? ''}` before login; Node drops the trailing space.
  for (const value of ['Bearer ', 'bearer', 'Basic']) {
    const optional = await call('/optional', { authorization: value })
    t.same([optional.status, optional.json.headers?.['x-consumer-id']], [200, undefined], `optional: the scheme alone is no credential: ${JSON.stringify(value)}`)
    const anonymous = await call('/anonymous', { authorization: value })
    t.same([anonymous.status, anonymous.json.headers?.['x-consumer-id']], [200, 'guest'], `anonymous: ${JSON.stringify(value)}`)
  }
})

t.test('a credential header under a `_` spelling is removed on routes whose plugin reads the header', async t => {
  const r = await call('/keys', { 'x-api-key': ALICE_KEY, x_api_key: BOB_KEY, 'x_api-key': BOB_KEY })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'alice')
  t.same([r.json.headers.x_api_key, r.json.headers['x_api-key'], r.json.headers['x-api-key']], [undefined, undefined, ALICE_KEY])
  const anonymous = await call('/anonymous', { x_api_key: BOB_KEY })
  t.same([anonymous.status, anonymous.json.headers['x-consumer-id'], anonymous.json.headers.x_api_key], [200, 'guest', undefined], 'without a credential too')
  const chain = await call('/chain', { authorization: `Bearer ${alice}`, x_api_key: BOB_KEY })
  t.same([chain.status, chain.json.headers['x-consumer-id'], chain.json.headers.x_api_key], [200, 'alice', undefined], 'whichever plugin of the route decides')
  const elsewhere = await call('/optional', { x_api_key: BOB_KEY })
  t.equal(elsewhere.json.headers.x_api_key, BOB_KEY, 'a route whose plugins do not read x-api-key passes it on')
})
