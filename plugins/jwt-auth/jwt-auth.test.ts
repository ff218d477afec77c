import t, { type Test } from 'tap'
import { generateKeyPairSync, createHmac } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { IdentityProvider, b64url, mint, signByHand, signingKey } from '../../test/helpers/identity-provider.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { configFile, startFromFile } from '../../test/reload/helpers.ts'
import { loadConfig, parseConfig } from '../../src/config/load.ts'

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const [rsa, ps, ec, ed] = await Promise.all([signingKey('RS256', 'rsa-1'), signingKey('PS256', 'ps-1'), signingKey('ES256', 'ec-1'), signingKey('EdDSA', 'ed-1')])
const rsa2 = await signingKey('RS256', 'rsa-2')
const [es384, es512, ed2] = await Promise.all([signingKey('ES384', 'ec-384'), signingKey('ES512', 'ec-521'), signingKey('Ed25519', 'ed-2')])
const handKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
const handPem = handKey.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
const handJwk = { ...handKey.publicKey.export({ format: 'jwk' }), kid: 'hand-1', alg: 'RS256' }

const idp = await IdentityProvider.start()
t.teardown(() => idp.close())
const discovered = idp.serve('/jwks', [rsa, ps, ec, es384, es512, ed, ed2])
discovered.keys.push(handJwk)
const flood = idp.serve('/jwks-flood', [rsa])
const rotating = idp.serve('/jwks-rotating', [rsa])
const flaky = idp.serve('/jwks-flaky', [rsa], 'max-age=1')
const evil = idp.serve('/evil', [])

const up = await startUpstream()
t.teardown(() => up.close())

const ISS = idp.url
const AUD = 'orders-api'
const route = (name: string, plugin: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: { jwt-auth: ${plugin} } }`
const gw: TestGateway = await startGateway(`
consumers:
  - { id: alice, groups: [staff, admins] }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('oidc', `{ issuer: "${ISS}", audience: ${AUD}, clockTolerance: 0, forwardClaims: { email: x-user-email, tenant: x-tenant } }`)}
${route('rs-only', `{ issuer: "${ISS}", algorithms: [RS256] }`)}
${route('hs', `{ secret: "${SECRET}", issuer: "${ISS}" }`)}
${route('mixed', `{ secret: "${SECRET}", keys: [ ${JSON.stringify(rsa.pem)} ], algorithms: [RS256, HS256] }`)}
${route('scoped', `{ issuer: "${ISS}", scopes: [read:orders, write:orders], claims: { tenant: [acme, globex] } }`)}
${route('from-query', `{ issuer: "${ISS}", from: [ { query: access_token } ], hideCredentials: true }`)}
${route('flood', `{ jwksUri: "${idp.url}/jwks-flood", jwks: { cooldown: 1h } }`)}
${route('rotating', `{ jwksUri: "${idp.url}/jwks-rotating", jwks: { cooldown: 0 } }`)}
${route('flaky', `{ jwksUri: "${idp.url}/jwks-flaky", cacheSize: 0, jwks: { cooldown: 0 } }`)}
${route('nowhere', `{ jwksUri: "http://127.0.0.1:1/jwks", jwks: { timeout: 1s } }`)}
${route('no-exp', `{ issuer: "${ISS}", requireExp: false }`)}
${route('groups', `{ issuer: "${ISS}", groupsClaim: groups, forwardClaims: { email: x_user_email } }`)}
${route('optional', `{ issuer: "${ISS}", optional: true }`)}
${route('anonymous', `{ issuer: "${ISS}", anonymous: alice }`)}
${route('static-ec', `{ keys: [ ${JSON.stringify(es384.jwk)}, ${JSON.stringify(es512.jwk)} ] }`)}
${route('two-pems', `{ keys: [ ${JSON.stringify(rsa.pem)}, ${JSON.stringify(rsa2.pem)} ], clockTolerance: 0 }`)}
${route('tight', `{ secret: "${SECRET}", maxTokenBytes: 256 }`)}
${route('by-client', `{ issuer: "${ISS}", consumerClaim: client_id, realm: orders, forwardClaims: { email: X-User-Email } }`)}
  - { name: per-tenant, match: { path: /per-tenant }, upstream: up, plugins: { jwt-auth: { issuer: "${ISS}" }, rate-limit: { by: [ "claim:tenant" ], limits: [ { name: n, requests: 1, window: 1h } ] } } }
`)
t.teardown(() => gw.close())

interface Echo { url: string, headers: Record<string, string | undefined> }

async function call (path: string, token?: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers: { ...(token === undefined ? {} : { authorization: `Bearer ${token}` }), ...headers } })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) as Echo & { error?: string, message?: string } }
}

async function refused (t: Test, path: string, token: string, reason: string, description: string) {
  const r = await call(path, token)
  t.equal(r.status, 401, `${reason}: 401`)
  t.equal(r.headers['www-authenticate'], `Bearer realm="portcullis", error="invalid_token", error_description="${description}"`)
  t.equal(r.json.error, 'invalid_token')
  t.equal(r.json.message, description)
  t.notOk(r.text.includes(token.split('.')[2] || token), 'the body does not echo the token')
  const line = await waitForLog(gw.logs, { reason, msg: `jwt-auth: ${description}` })
  t.ok(line, 'a log line says why')
  t.notOk(JSON.stringify(line).includes(token), 'the log line does not hold the token')
}

function failures (path: string, reason: string): number {
  const metric = gw.metrics.registry.getSingleMetric('portcullis_auth_failures_total') as unknown as { hashMap: Record<string, { value: number, labels: Record<string, string> }> }
  return Object.values(metric.hashMap).find(v => v.labels.route === path && v.labels.reason === reason)?.value ?? 0
}

const now = () => Math.floor(Date.now() / 1000)
const good = { iss: ISS, aud: AUD, sub: 'alice', email: 'alice@example.com', tenant: 'acme' }

t.test('valid tokens of every asymmetric algorithm, keys from OIDC discovery', async t => {
  for (const key of [rsa, ps, ec, es384, es512, ed, ed2]) {
    const r = await call('/oidc', await mint(key, good))
    t.equal(r.status, 200, `${key.alg}: 200`)
    t.equal(r.json.headers['x-consumer-id'], 'alice')
    t.equal(r.json.headers['x-consumer-groups'], 'staff,admins', 'a declared consumer: its groups')
    t.equal(r.json.headers['x-user-email'], 'alice@example.com', 'forwarded claim')
    t.equal(r.json.headers['x-tenant'], 'acme')
  }
  t.ok(gw.logs.find(l => l.level === 40 && l.msg === 'jwt-auth: keys fetched over plain http://; use https:// in production' && l.url === ISS), 'http:// works, with a warning at load')
  t.equal(idp.discoveryFetches, 1, 'one discovery for the whole config')
  t.equal(discovered.fetches, 1, 'one JWKS fetch')
})

t.test('HS256 with the shared secret', async t => {
  const token = await new SignJWT({ sub: 'svc-1', iss: ISS }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
  const r = await call('/hs', token)
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'svc-1', 'an undeclared subject is a consumer of its own')
  t.equal(r.json.headers['x-consumer-groups'], undefined)
  const wrong = await new SignJWT({ sub: 'svc-1', iss: ISS }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET + 'x'))
  await refused(t, '/hs', wrong, 'bad_signature', 'the token\'s signature is invalid')
})

t.test('a jwksUri with a user and password: the provider gets them (Basic), no log line shows them', async t => {
  const basic = `Basic ${Buffer.from('svc:S3cretPw').toString('base64')}`
  const keys = JSON.stringify({ keys: [rsa.jwk] })
  const provider = await startUpstream((req, res) => {
    if (req.headers.authorization !== basic) res.writeHead(401).end()
    else if (req.url === '/keys') res.writeHead(200, { 'content-type': 'application/json' }).end(keys)
    else res.writeHead(404).end()
  })
  t.teardown(() => provider.close())
  const at = (path: string) => `${provider.url.replace('://', '://svc:S3cretPw@')}${path}`
  const g = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, plugins: { jwt-auth: { jwksUri: "${at('/keys')}" } } }
  - { name: missing, match: { path: /missing }, upstream: up, plugins: { jwt-auth: { jwksUri: "${at('/missing')}" } } }
`)
  t.teardown(() => g.close())
  const token = await mint(rsa, { sub: 'alice' })
  const status = async (path: string) => (await request(`${g.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).statusCode
  t.equal(await status('/keys'), 200, 'the key set was fetched with the credentials')
  t.equal(await status('/missing'), 503, 'the provider answered 404')
  const failed = await waitForLog(g.logs, { msg: 'jwt-auth: key set fetch failed; no keys yet' })
  t.equal(failed?.err, `${provider.url.replace('://', '://[redacted]@')}/missing answered 404`)
  t.equal(g.logs.filter(l => l.msg === 'jwt-auth: keys fetched over plain http://; use https:// in production').length, 2)
  t.notMatch(JSON.stringify(g.logs), /S3cretPw/, 'in no line')
})

t.test('time claims: expired, not yet valid, missing exp', async t => {
  await refused(t, '/oidc', await mint(rsa, { ...good, exp: now() - 60 }), 'expired', 'the token has expired')
  await refused(t, '/oidc', await mint(rsa, { ...good, nbf: now() + 3600 }), 'not_yet_valid', 'the token is not valid yet')
  const noExp = await new SignJWT(good).setProtectedHeader({ alg: 'RS256', kid: rsa.kid }).sign(rsa.privateKey)
  await refused(t, '/oidc', noExp, 'missing_exp', 'the token has no expiry (exp)')
  t.equal((await call('/no-exp', noExp)).status, 200, 'requireExp: false accepts it')
  t.equal(failures('oidc', 'expired'), 1, 'portcullis_auth_failures_total{route, plugin, reason}')
})

t.test('issuer and audience', async t => {
  await refused(t, '/oidc', await mint(rsa, { ...good, iss: 'https://evil.example.com' }), 'wrong_issuer', 'the token is from another issuer')
  await refused(t, '/oidc', await mint(rsa, { ...good, aud: 'other-api' }), 'wrong_audience', 'the token is for another audience')
})

t.test('algorithms: not allowed, none, HMAC signed with the RSA public key', async t => {
  await refused(t, '/rs-only', await mint(ec, good), 'alg_not_allowed', 'the token\'s algorithm is not allowed')
  const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ ...good, exp: now() + 60 })}.`
  await refused(t, '/oidc', none, 'alg_not_allowed', 'the token\'s algorithm is not allowed')
  // Algorithm confusion: HS256 keyed with the public key the attacker knows.
  const input = `${b64url({ alg: 'HS256', typ: 'JWT', kid: rsa.kid })}.${b64url({ ...good, exp: now() + 60 })}`
  const confused = `${input}.${createHmac('sha256', rsa.pem).update(input).digest('base64url')}`
  await refused(t, '/oidc', confused, 'alg_not_allowed', 'the token\'s algorithm is not allowed')
  // Where HS256 is allowed, it is checked with the secret only, never with the public key.
  await refused(t, '/mixed', confused, 'bad_signature', 'the token\'s signature is invalid')
  t.equal((await call('/mixed', await mint(rsa, good))).status, 200, 'the mixed route takes RS256 with its static PEM key')
})

t.test('tampered payload and signature', async t => {
  const [h, p, s] = (await mint(rsa, good)).split('.') as [string, string, string]
  const payload = b64url({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'mallory' })
  await refused(t, '/oidc', `${h}.${payload}.${s}`, 'bad_signature', 'the token\'s signature is invalid')
  const flipped = (s[10] === 'A' ? 'B' : 'A')
  await refused(t, '/oidc', `${h}.${p}.${s.slice(0, 10)}${flipped}${s.slice(11)}`, 'bad_signature', 'the token\'s signature is invalid')
})

t.test('headers never honoured: jku, x5u, jwk; unknown crit refused', async t => {
  const attacker = await signingKey('RS256', rsa.kid)
  evil.keys.push(attacker.jwk)
  const viaJku = await mint(attacker, good, { jku: `${idp.url}/evil`, x5u: `${idp.url}/evil` })
  await refused(t, '/oidc', viaJku, 'bad_signature', 'the token\'s signature is invalid')
  const viaJwk = await mint(attacker, good, { jwk: attacker.jwk })
  await refused(t, '/oidc', viaJwk, 'bad_signature', 'the token\'s signature is invalid')
  t.equal(evil.fetches, 0, 'the jku URL was never fetched')
  const crit = signByHand({ alg: 'RS256', kid: 'hand-1', crit: ['x-custom'], 'x-custom': true }, { ...good, exp: now() + 60 }, handPem)
  await refused(t, '/oidc', crit, 'unsupported', 'the token uses an unsupported header or critical extension')
  const plain = signByHand({ alg: 'RS256', kid: 'hand-1' }, { ...good, exp: now() + 60 }, handPem)
  t.equal((await call('/oidc', plain)).status, 200, 'the same key without crit verifies')
})

t.test('oversized tokens are refused before any crypto', async t => {
  await refused(t, '/oidc', await mint(rsa, { ...good, pad: 'x'.repeat(9000) }), 'too_large', 'the token is too large')
})

t.test('unknown kid; a flood of them fetches nothing more within the cooldown', async t => {
  await refused(t, '/oidc', await mint(await signingKey('RS256', 'nobody'), good), 'unknown_key', 'the token is signed with an unknown key')
  t.equal((await call('/flood', await mint(rsa, good))).status, 200)
  const before = flood.fetches
  t.equal(before, 1)
  const stranger = await signingKey('RS256')
  const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => mint(stranger, good, { kid: `junk-${i}` })))
  const statuses = await Promise.all(tokens.map(async token => (await call('/flood', token)).status))
  t.same(new Set(statuses), new Set([401]))
  t.equal(flood.fetches, before, '50 unknown kids, no fetch: the cooldown (1h) has not passed since the last one')
})

t.test('key rotation: the new key after an unknown-kid refetch, both during the overlap, the old one refused once removed', async t => {
  // Even with cooldown 0, a second between two fetches: the last was before `since`.
  const aSecondOn = (since: number) => until(() => performance.now() - since > 1_000)
  const old = await mint(rsa, good)
  t.equal((await call('/rotating', old)).status, 200)
  rotating.keys.push(rsa2.jwk)
  const fresh = await mint(rsa2, good)
  await aSecondOn(performance.now())
  t.equal((await call('/rotating', fresh)).status, 200, 'the new kid was fetched')
  const refetched = performance.now()
  t.equal((await call('/rotating', old)).status, 200, 'overlap: the old key still verifies')
  rotating.keys.splice(0, 1)
  await aSecondOn(refetched)
  // The next unknown kid refetches (cooldown 0): the old key is gone, cached verifications with it too.
  t.equal((await call('/rotating', await mint(stranger(), good))).status, 401)
  const r = await call('/rotating', old)
  t.equal(r.status, 401, 'the removed key no longer verifies, even for a token verified (and cached) before')
  t.equal((await call('/rotating', fresh)).status, 200)
})
function stranger () { return { ...rsa2, kid: 'not-yet-published' } }

t.test('provider down after the first fetch: the last good key set keeps serving; refresh honours Cache-Control', async t => {
  t.equal((await call('/flaky', await mint(rsa, good))).status, 200)
  t.ok(await until(() => flaky.fetches >= 2, 5_000), 'refreshed in the background (max-age=1)')
  flaky.down = true
  const failedAt = flaky.fetches
  t.ok(await until(() => flaky.fetches > failedAt, 5_000), 'a refresh failed')
  t.equal((await call('/flaky', await mint(rsa, { ...good, jti: 'new' }))).status, 200, 'a token never seen (no cache) still verifies')
  t.ok(await waitForLog(gw.logs, { msg: 'jwt-auth: key set fetch failed; the last good key set keeps serving' }))
  flaky.down = false
})

t.test('a reload keeps the last good key set: the provider down during the reload, tokens still verify; nothing is fetched before it is due', async t => {
  const held = idp.serve('/jwks-reload', [rsa])
  const yaml = (extra = '') => `server:\n  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { jwksUri: "${idp.url}/jwks-reload", jwks: { cooldown: 2s, timeout: 1s } } } }
${extra}`
  const cf = await configFile(yaml())
  t.teardown(() => cf.remove())
  const reloading = await startFromFile(cf.file)
  t.teardown(() => reloading.close())
  const status = async (jti: string) => {
    const res = await request(`${reloading.url}/r`, { headers: { authorization: `Bearer ${await mint(rsa, { ...good, jti })}` } })
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await status('before'), 200)
  t.equal(held.fetches, 1)
  held.down = true
  await cf.write(yaml('  - { name: other, match: { path: /other }, upstream: up }'))
  t.match(await reloading.reloader.reload('admin'), { result: 'success' }, 'an unrelated change')
  t.equal(await status('after'), 200, 'a token never seen verifies with the held key set, not 503')
  t.equal(held.fetches, 1, 'nothing fetched at the reload: the held set is not due (10m)')
  held.down = false
})

t.test('a reload revokes a static key: a token verified (and cached) with it before is refused after', async t => {
  const yaml = (pems: string[]) => `server:\n  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${['a', 'b'].map(name => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: { jwt-auth: { keys: [ ${pems.map(p => JSON.stringify(p)).join(', ')} ] } } }`).join('\n')}
`
  const cf = await configFile(yaml([rsa.pem, rsa2.pem]))
  t.teardown(() => cf.remove())
  const reloading = await startFromFile(cf.file)
  t.teardown(() => reloading.close())
  const status = async (path: string, token: string) => {
    const res = await request(`${reloading.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    return res.statusCode
  }
  const revoked = await mint(rsa2, good)
  const kept = await mint(rsa, good)
  for (const path of ['/a', '/b', '/a']) t.equal(await status(path, revoked), 200, `${path}: verified, then from the cache`)
  await cf.write(yaml([rsa.pem]))
  t.match(await reloading.reloader.reload('admin'), { result: 'success' })
  t.equal(await status('/a', revoked), 401, 'the removed key no longer verifies')
  t.equal(await status('/b', revoked), 401, 'on any route')
  t.equal(await status('/a', kept), 200, 'the key left still does')
})

t.test('provider down from the start: 503, not 401', async t => {
  const r = await call('/nowhere', await mint(rsa, good))
  t.equal(r.status, 503)
  t.equal(r.json.error, 'auth_unavailable')
  t.equal(r.headers['www-authenticate'], undefined)
})

t.test('scopes (403 insufficient_scope) and required claims', async t => {
  const ok = await call('/scoped', await mint(rsa, { ...good, scope: 'read:orders write:orders profile' }))
  t.equal(ok.status, 200)
  const scp = await call('/scoped', await mint(rsa, { ...good, scp: ['read:orders', 'write:orders'], tenant: 'globex' }))
  t.equal(scp.status, 200, 'scp as an array; tenant one of the listed values')
  const r = await call('/scoped', await mint(rsa, { ...good, scope: 'read:orders' }))
  t.equal(r.status, 403)
  t.equal(r.headers['www-authenticate'], 'Bearer realm="portcullis", error="insufficient_scope", error_description="the token lacks a required scope", scope="read:orders write:orders"')
  t.equal(r.json.error, 'insufficient_scope')
  await refused(t, '/scoped', await mint(rsa, { ...good, scope: 'read:orders write:orders', tenant: 'initech' }), 'claim_mismatch', 'the token\'s tenant claim is not accepted')
})

t.test('claim names beyond ASCII (or with " or \\): the 401 body names them whole, WWW-Authenticate as ? (not a 500: Node refuses such a header); scopes must be scope tokens', async t => {
  const g = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: org, match: { path: /org }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", claims: { "組織": acme, "q\\"b\\\\c": x } } } }
  - { name: user, match: { path: /user }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", consumerClaim: "用户" } } }
`)
  t.teardown(() => g.close())
  const answer = async (path: string, claims: Record<string, unknown>) => {
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
    const res = await request(`${g.url}${path}`, { headers: { authorization: `Bearer ${token}` } })
    const { error, message } = await res.body.json() as { error?: string, message?: string }
    return { status: res.statusCode, challenge: res.headers['www-authenticate'], error, message }
  }
  const invalid = (shown: string, message: string) => ({ status: 401, challenge: `Bearer realm="portcullis", error="invalid_token", error_description="${shown}"`, error: 'invalid_token', message })
  t.same(await answer('/org', { sub: 'alice' }), invalid('the token\'s ?? claim is not accepted', 'the token\'s 組織 claim is not accepted'))
  t.same(await answer('/org', { sub: 'alice', 組織: 'acme' }), invalid('the token\'s q?b?c claim is not accepted', 'the token\'s q"b\\c claim is not accepted'), 'RFC 6750 allows no " or \\ in error_description')
  t.same(await answer('/user', { sub: 'alice' }), invalid('the token has no ?? claim', 'the token has no 用户 claim'))
  t.equal((await answer('/user', { 用户: 'alice' })).status, 200)

  const scoped = (scopes: string) => startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", scopes: ${scopes} } } }
`).then(async started => { await started.close(); return 'loads' }, (err: Error) => err.message)
  t.match(await scoped('[ "読み取り", "a\\"b", "a\\\\b", ok ]'), new RegExp([
    'invalid configuration \\(3 problems\\):',
    'test\\.yaml:7:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.scopes\\[0\\]: must be a scope token \\(RFC 6749 3\\.3\\): printable ASCII, without spaces, " or \\\\',
    '.*scopes\\[1\\]: must be a scope token.*',
    '.*scopes\\[2\\]: must be a scope token'].join('\n')))
  t.equal(await scoped('[ "orders:read", "https://api.example.com/x.write", "!#$%&()*+,-./:;<=>?@[]^_`{|}~" ]'), 'loads', 'every scope-token character')
})

t.test('typed required claims: a boolean and a number in the config match the token\'s boolean and number, not their text', async t => {
  const g = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: typed, match: { path: /typed }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", claims: { email_verified: true, level: 5, tier: "5" } } } }
`)
  t.teardown(() => g.close())
  const status = async (claims: Record<string, unknown>) => {
    const token = await new SignJWT({ sub: 'alice', ...claims }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
    return (await request(`${g.url}/typed`, { headers: { authorization: `Bearer ${token}` } })).statusCode
  }
  t.equal(await status({ email_verified: true, level: 5, tier: '5' }), 200)
  t.equal(await status({ email_verified: 'true', level: 5, tier: '5' }), 401, 'a string is not a boolean')
  t.equal(await status({ email_verified: true, level: '5', tier: '5' }), 401, 'a string is not a number')
  t.equal(await status({ email_verified: true, level: 5, tier: 5 }), 401, 'a quoted number is a string')
})

t.test('where the token is read: header only by default; a query parameter when configured, then hidden', async t => {
  const token = await mint(rsa, good)
  t.equal((await call('/oidc', token)).json.headers.authorization, `Bearer ${token}`, 'without hideCredentials the upstream gets the token')
  const r = await call(`/oidc?access_token=${token}`)
  t.equal(r.status, 401, 'a token in the query is not read when only the header is allowed')
  t.equal(r.headers['www-authenticate'], 'Bearer realm="portcullis"', 'no error code without a token (RFC 6750 3.1)')
  t.equal(r.json.error, 'unauthorized')
  const q = await call(`/from-query?a=1&access_token=${token}&b=2`)
  t.equal(q.status, 200)
  t.equal(q.json.url, '/from-query?a=1&b=2', 'hideCredentials removed it before forwarding')
  t.equal((await call('/from-query', token)).status, 401, 'and the header is not read there')
})

t.test('identity headers from the client never reach the upstream', async t => {
  const spoof = { 'x-consumer-id': 'admin', 'x-consumer-groups': 'admins', 'x-user-email': 'ceo@example.com', 'x-anonymous-consumer': 'false' }
  const r = await call('/oidc', await mint(rsa, { ...good, email: undefined }), spoof)
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'alice')
  t.equal(r.json.headers['x-consumer-groups'], 'staff,admins')
  t.equal(r.json.headers['x-user-email'], undefined, 'a forwarded-claim header the token does not fill stays empty')
  t.equal(r.json.headers['x-anonymous-consumer'], undefined)
  const anon = await call('/optional', undefined, spoof)
  t.equal(anon.status, 200, 'optional: no token, no consumer')
  t.equal(anon.json.headers['x-consumer-id'], undefined)
  t.equal((await call('/optional', await mint(rsa, { ...good, exp: now() - 60 }))).status, 401, 'optional still refuses a bad token')
  const stand = await call('/anonymous', undefined, spoof)
  t.equal(stand.status, 200, 'anonymous: no token, the anonymous consumer')
  t.same([stand.json.headers['x-consumer-id'], stand.json.headers['x-consumer-groups'], stand.json.headers['x-anonymous-consumer']], ['alice', 'staff,admins', 'true'])
  const signed = await call('/anonymous', await mint(rsa, { ...good, sub: 'bob' }), spoof)
  t.same([signed.json.headers['x-consumer-id'], signed.json.headers['x-anonymous-consumer']], ['bob', undefined], 'a token: its consumer')
  t.equal((await call('/anonymous', await mint(rsa, { ...good, exp: now() - 60 }))).status, 401, 'anonymous still refuses a bad token')
})

t.test('verified claims reach later plugins: rate-limit keyed on claim:tenant', async t => {
  t.equal((await call('/per-tenant', await mint(rsa, { ...good, tenant: 'acme' }))).status, 200)
  t.equal((await call('/per-tenant', await mint(rsa, { ...good, tenant: 'acme' }))).status, 429, 'acme used its one request')
  t.equal((await call('/per-tenant', await mint(rsa, { ...good, tenant: 'globex' }))).status, 200, 'globex, from the same address, has its own')
})

t.test('verified tokens are cached but never past exp', async t => {
  // Two seconds at least before exp for the two calls (now() + 2 left as little as one on a slow machine).
  const exp = Math.ceil(Date.now() / 1000) + 2
  const token = await mint(rsa, { ...good, exp })
  t.equal((await call('/oidc', token)).status, 200)
  t.equal((await call('/oidc', token)).status, 200, 'from the cache')
  await until(() => Date.now() > exp * 1000, 5_000)
  await refused(t, '/oidc', token, 'expired', 'the token has expired')
})

t.test('static keys: the algorithms they can verify by default (ES384 and ES512 for P-384 and P-521 keys), no other', async t => {
  t.equal((await call('/static-ec', await mint(es384, good))).status, 200, 'ES384')
  t.equal((await call('/static-ec', await mint(es512, good))).status, 200, 'ES512')
  await refused(t, '/static-ec', await mint(rsa, good), 'alg_not_allowed', 'the token\'s algorithm is not allowed')
  await refused(t, '/static-ec', await mint({ ...es384, kid: 'ec-521' }, good), 'unknown_key', 'the token is signed with an unknown key')
})

t.test('several PEM keys (no kid): each is tried; a token is refused for what is wrong with it, whichever key signed it', async t => {
  for (const key of [rsa, rsa2]) {
    t.equal((await call('/two-pems', await mint(key, good, { kid: undefined }))).status, 200, `${key.kid}, without kid`)
    t.equal((await call('/two-pems', await mint(key, good, { kid: 'whatever' }))).status, 200, `${key.kid}, whatever kid it names`)
    await refused(t, '/two-pems', await mint(key, { ...good, exp: now() - 60 }), 'expired', 'the token has expired')
  }
  await refused(t, '/two-pems', await mint(await signingKey('RS256'), good), 'bad_signature', 'the token\'s signature is invalid')
})

t.test('maxTokenBytes: a token of exactly that many bytes is read, one more is refused', async t => {
  const sized = async (length: number) => {
    const base = await new SignJWT({ sub: 'svc-1', pad: '' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
    // Each 3 characters of pad add 4 to the token (base64url); the first fill brings it to a multiple.
    for (let pad = Math.floor((length - base.length) * 3 / 4) - 3; ; pad++) {
      const token = await new SignJWT({ sub: 'svc-1', pad: 'x'.repeat(pad) }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
      if (token.length === length) return token
      if (token.length > length) throw new Error(`no token of ${length} bytes`)
    }
  }
  t.equal((await call('/tight', await sized(256))).status, 200, '256 bytes')
  await refused(t, '/tight', await sized(257), 'too_large', 'the token is too large')
})

t.test('clockTolerance: 30 s by default', async t => {
  t.equal((await call('/rs-only', await mint(rsa, { ...good, exp: now() - 10 }))).status, 200, 'expired 10 s ago')
  t.equal((await call('/rs-only', await mint(rsa, { ...good, nbf: now() + 10 }))).status, 200, 'valid in 10 s')
  await refused(t, '/rs-only', await mint(rsa, { ...good, exp: now() - 40 }), 'expired', 'the token has expired')
  await refused(t, '/rs-only', await mint(rsa, { ...good, nbf: now() + 40 }), 'not_yet_valid', 'the token is not valid yet')
  t.equal((await call('/rs-only', await mint(rsa, { ...good, iat: now() + 10 }))).status, 200, 'issued 10 s ahead of this clock')
  await refused(t, '/rs-only', await mint(rsa, { ...good, iat: now() + 40 }), 'not_yet_valid', 'the token is not valid yet')
})

t.test('claims any header can carry: consumer and groups from the token percent-encoded when not plain ASCII', async t => {
  const r = await call('/groups', await mint(rsa, { ...good, sub: '用户 1', groups: ['Разработка', 'x,admins', 'ops'], email: 'ü@example.com' }), { x_user_email: 'ceo@example.com' })
  t.equal(r.status, 200, 'not a 502: nothing the gateway sends upstream is refused by its HTTP client')
  t.equal(decodeURIComponent(r.json.headers['x-consumer-id'] as string), '用户 1')
  t.same((r.json.headers['x-consumer-groups'] as string).split(',').map(decodeURIComponent), ['Разработка', 'x,admins', 'ops'], 'a comma inside a group does not make two')
  t.equal(decodeURIComponent(r.json.headers.x_user_email as string), 'ü@example.com', 'the forwarded claim, under the configured name')
  t.notOk(JSON.stringify(r.json.headers).includes('ceo@example.com'), 'the client\'s spelling of it is gone')
})

t.test('a lone UTF-16 surrogate in sub, a group or a forwarded claim (valid JSON, signed): U+FFFD percent-encoded, not a 500', async t => {
  const r = await call('/groups', await mint(rsa, { ...good, sub: 'bob\ud800', groups: ['ops\udfff', 'a\ud83d\ude00'], email: '\udc00@example.com' }))
  t.equal(r.status, 200, r.text)
  t.equal(r.json.headers['x-consumer-id'], 'bob%EF%BF%BD')
  t.equal(r.json.headers['x-consumer-groups'], 'ops%EF%BF%BD,a%F0%9F%98%80', 'a surrogate pair is a character of its own: kept')
  t.equal(r.json.headers.x_user_email, '%EF%BF%BD%40example.com')
})

t.test('consumerClaim, realm; forwardClaims headers written in any case are still the client\'s to lose', async t => {
  const r = await call('/by-client', await mint(rsa, { ...good, client_id: 'svc-9' }), { 'x-user-email': 'ceo@example.com' })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'svc-9', 'the consumer named by client_id')
  t.equal(r.json.headers['x-user-email'], 'alice@example.com', 'the token\'s, not the client\'s')
  const spoof = await call('/by-client', await mint(rsa, { ...good, client_id: 'svc-9', email: undefined }), { 'x-user-email': 'ceo@example.com' })
  t.equal(spoof.json.headers['x-user-email'], undefined, 'removed even when the token has none')
  const none = await call('/by-client', await mint(rsa, good))
  t.equal(none.status, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="orders", error="invalid_token", error_description="the token has no client_id claim"')
  t.equal((await call('/by-client')).headers['www-authenticate'], 'Bearer realm="orders"')
})

t.test('a forwarded-claim header any jwt-auth of the config names is the client\'s to lose on every route: one replacing or turning off the top-level jwt-auth too, one without auth', async t => {
  const other = await startGateway(`
consumers: [ { id: alice, credentials: { key-auth: { keys: [ alice-key-0123456789abcdef ] } } } ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
plugins:
  jwt-auth: { secret: "${SECRET}", forwardClaims: { email: x-user-email } }
routes:
  - { name: override, match: { path: /override }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}" } } }
  - { name: keyonly, match: { path: /keyonly }, upstream: up, plugins: { jwt-auth: false, key-auth: {} } }
  - { name: open, match: { path: /open }, upstream: up, plugins: { jwt-auth: false } }
`)
  t.teardown(() => other.close())
  const spoof = { 'x-user-email': 'ceo@corp', x_user_email: 'ceo@corp' }
  const token = await new SignJWT({ sub: 'bob' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
  const seen = async (path: string, headers: Record<string, string>) => {
    const res = await request(`${other.url}${path}`, { headers: { ...spoof, ...headers } })
    return { status: res.statusCode, headers: (await res.body.json() as Echo).headers }
  }
  const override = await seen('/override', { authorization: `Bearer ${token}` })
  t.same([override.status, override.headers['x-consumer-id'], override.headers['x-user-email'], override.headers.x_user_email], [200, 'bob', undefined, undefined], 'a route replacing jwt-auth')
  const keyonly = await seen('/keyonly', { 'x-api-key': 'alice-key-0123456789abcdef' })
  t.same([keyonly.status, keyonly.headers['x-consumer-id'], keyonly.headers['x-user-email'], keyonly.headers.x_user_email], [200, 'alice', undefined, undefined], 'a route turning it off, with key-auth')
  const open = await seen('/open', {})
  t.same([open.headers['x-user-email'], open.headers.x_user_email], [undefined, undefined], 'a route without auth plugins does not pass it on either')
})

t.test('a relative jwksFile is read from the config file\'s folder, not the working directory', async t => {
  const cf = await configFile(`server:\n  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { jwt-auth: { jwksFile: keys/jwks.json } } }
`)
  t.teardown(() => cf.remove())
  await mkdir(join(cf.dir, 'keys'))
  await writeFile(join(cf.dir, 'keys', 'jwks.json'), JSON.stringify({ keys: [rsa.jwk] }))
  t.not(process.cwd(), cf.dir)
  const file = await startFromFile(cf.file)
  t.teardown(() => file.close())
  const res = await request(`${file.url}/x`, { headers: { authorization: `Bearer ${await mint(rsa, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })}` } })
  await res.body.dump()
  t.equal(res.statusCode, 200, 'verified with the key from keys/jwks.json beside the config')
  t.match((await loadConfig(cf.file, {})).config.routes[0]?.plugins, { 'jwt-auth': { jwksFile: join(cf.dir, 'keys', 'jwks.json') } }, 'the path the plugin is given')
})

t.test('configs that cannot verify anything are errors at load', async t => {
  const load = (plugin: string) => startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { jwt-auth: ${plugin} } }
`)
  // Keys are read at load too: an unusable one is a config error at its key, found by validate.
  await t.rejects(load('{ keys: [ { kty: OKP, crv: X25519, x: "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo" } ] }'),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.keys\[0\]: verifies no JWT signature algorithm \(kty OKP, crv X25519\)$/ })
  await t.rejects(load(`{ keys: [ ${JSON.stringify(rsa.pem)} ], algorithms: [ES256] }`),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.algorithms: ES256 fit none of the keys \(they verify RS256, RS384, RS512, PS256, PS384, PS512\)$/ })
  // What the config alone shows: config errors at their key, found by validate too.
  await t.rejects(load(`{ keys: [ ${JSON.stringify(rsa.pem)} ], algorithms: [RS256, HS256, HS384] }`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.algorithms: HS256, HS384 need secret$/ })
  await t.rejects(load(`{ secret: "${SECRET}", algorithms: [RS256, HS256] }`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.algorithms: RS256 need jwksUri, keys or jwksFile \(with secret, issuer is only checked against iss: no discovery\)$/ })
  await t.rejects(load(`{ keys: [ ${JSON.stringify(rsa.pem)} ], jwksUri: "${idp.url}/jwks" }`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.jwksUri: not with static keys \(keys, jwksFile\): one source of keys$/ })
  // An empty claim name could never be in a token: every token refused, or nothing forwarded.
  for (const [key, plugin] of [['claims', `{ secret: "${SECRET}", claims: { "": x } }`], ['forwardClaims', `{ secret: "${SECRET}", forwardClaims: { "": x-user } }`]] as const) {
    const err = await load(plugin).then(() => undefined, (e: Error) => e.message)
    t.match(err, new RegExp(`routes\\[0\\]\\.plugins\\.jwt-auth\\.${key}\\.: "" is not a valid name: it must not be empty$`), key)
  }
  // Each jwks duration has a ceiling of its own, far below what a Node timer can wait (24.8 days, refused for every duration).
  await t.rejects(load(`{ jwksUri: "${idp.url}/jwks", jwks: { timeout: 2m, refresh: 8d } }`),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.jwks\.timeout: must be at most 1m\n.*test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.jwks\.refresh: must be at most 7d$/ })
  // And a floor: jwks.timeout 0 answered 503 for ever; maxRefresh 0 polled the provider every second.
  await t.rejects(load(`{ jwksUri: "${idp.url}/jwks", jwks: { timeout: 0s, maxRefresh: 0s } }`),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.jwks\.timeout: must be at least 100ms: .*\n.*test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.jwks\.maxRefresh: must be at least 10s: / })
  // maxRefresh wins over the cooldown: below the default one (30s), it polled the provider every maxRefresh.
  await t.rejects(load(`{ jwksUri: "${idp.url}/jwks", jwks: { maxRefresh: 10s } }`),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.jwks\.maxRefresh: must be at least jwks\.cooldown \(30s, its default\): it would refresh the key set more often than the cooldown lets any fetch run$/ })
  // A leeway of days takes tokens expired for days: no clock skew.
  await t.rejects(load(`{ secret: "${SECRET}", clockTolerance: 20d }`),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.clockTolerance: must be at most 5m: clocks apart by more are a fault to fix, and a longer leeway takes expired tokens$/ })
  await t.rejects(load(`{ secret: "${SECRET}", clockTolerance: 300001 }`), { message: /clockTolerance: must be at most 5m/ }, 'in milliseconds too')
  await (await load(`{ secret: "${SECRET}", clockTolerance: 5m }`)).close()
  // More keys without kid than a token is checked with: those past the third would verify nothing.
  const pems = await Promise.all(Array.from({ length: 4 }, () => signingKey('ES256')))
  await t.rejects(load(`{ keys: [ ${pems.map(k => JSON.stringify(k.pem)).join(', ')} ] }`),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.jwt-auth\.keys: 4 keys without kid fit ES256: a token whose kid picks no key is checked with the first 3 only, so the others would verify nothing; give them a kid \(as JWKs\), or keep 3 per algorithm$/ })
  await (await load(`{ keys: [ ${pems.slice(1).map(k => JSON.stringify(k.pem)).join(', ')}, ${JSON.stringify(pems[0]?.jwk)}, ${JSON.stringify(rsa.pem)} ] }`)).close()
  const ok = await load(`{ secret: "${SECRET}", algorithms: [HS512] }`)
  await ok.close()
  t.pass('HS512 alone with a secret loads')
})

t.test('forwardClaims may not name identity, framing, hop-by-hop or Host headers, nor where tokens are read, nor one header twice: errors at the claim', async t => {
  const load = (forward: string, from = '[ { header: authorization, scheme: Bearer }, { header: x-token } ]') => parseConfig(`server: { listen: { port: 8080 } }
upstreams: { up: { targets: [ { url: "${up.url}" } ] } }
routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      jwt-auth:
        secret: "${SECRET}"
        from: ${from}
        forwardClaims: ${forward}
`, 'c.yaml', {}).then(() => 'loads', (err: Error) => err.message)
  // A token's claims posing as the consumer the gateway identified.
  t.match(await load('{ name: x-consumer-id, role: X-Anonymous-Consumer, g: x_consumer_groups, e: x-user-email }'), new RegExp([
    'invalid configuration \\(3 problems\\):',
    'c\\.yaml:11:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.forwardClaims\\.name: "x-consumer-id" is an identity header, set by auth plugins only',
    '.*forwardClaims\\.role: "X-Anonymous-Consumer" is an identity header, set by auth plugins only',
    '.*forwardClaims\\.g: "x_consumer_groups" is an identity header, set by auth plugins only$'].join('\n')))
  for (const name of ['content-length', 'Transfer-Encoding', 'expect', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'Proxy-Foo', '":path"']) {
    t.match(await load(`{ c: ${name} }`), /c\.yaml:11:\d+ routes\[0\]\.plugins\.jwt-auth\.forwardClaims\.c: must be a valid header name, and not a hop-by-hop or framing header \(Connection, Transfer-Encoding, Content-Length, Proxy-\*...\)$/, name)
  }
  t.match(await load('{ c: Host }'), /forwardClaims\.c: "Host" is set by the gateway for the route \(preserveHost, hostHeader\)$/, 'a token picking the upstream\'s virtual host')
  t.match(await load('{ c: x_token }'), /forwardClaims\.c: "x_token" is where this plugin reads tokens \(from\): forwarded claims are removed from every request first, so no token would be found$/)
  t.match(await load('{ sub: Cookie }', '[ { cookie: session } ]'), /forwardClaims\.sub: "Cookie" is where this plugin reads tokens \(from\)/, 'a cookie location reads the Cookie header')
  // A token's claim posing as another client address, or trace.
  for (const name of ['x-forwarded-for', 'X-Real-IP', 'forwarded', 'x-forwarded-proto', 'x-forwarded-host']) {
    t.match(await load(`{ c: ${name} }`), new RegExp(`forwardClaims\\.c: "${name}" tells the upstream who the client is: the gateway sets it \\(server\\.trustProxy\\)$`), name)
  }
  for (const name of ['traceparent', 'tracestate', 'x-request-id']) {
    t.match(await load(`{ c: ${name} }`), /forwardClaims\.c: "[a-z-]+" is set by the gateway for every request \(trace context, request id\)$/, name)
  }
  // A request field clients send: the gateway would remove it from every request on every route (a POST lost its Content-Type).
  for (const name of ['Content-Type', 'content_encoding', 'Accept', 'accept-encoding', 'Cookie', 'user-agent', 'Origin', 'if-none-match',
    'If-Modified-Since', 'range', 'sec-websocket-key', 'Sec-Fetch-Site', 'via', 'referer', 'cache-control', 'access-control-request-method', 'priority']) {
    t.match(await load(`{ c: ${name} }`), new RegExp(`^invalid configuration \\(1 problem\\):\nc\\.yaml:11:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.forwardClaims\\.c: "${name}" is a request field clients send \\(RFC 9110, Fetch\\): forwarded claims are removed from every request on every route, so no client's would reach an upstream; use a header of your own \\(x-user-\\.\\.\\.\\)$`), name)
  }
  t.match(await load('{ c: Authorization }', '[ { cookie: session } ]'), /forwardClaims\.c: "Authorization" is a request field clients send/, 'Authorization, where no auth plugin reads it')
  t.equal(await load('{ c: x-content-length, d: hosts, e: x-consumers, f: acceptance, g: x-origin, h: ranges, i: x-user-agent, j: secret }'), 'loads', 'names that merely look alike')
  // One header would hold whichever claim is set last.
  t.match(await load('{ tenant: X-Tenant, org: x-tenant, team: x_TENANT, email: x-email }'), new RegExp([
    'invalid configuration \\(2 problems\\):',
    'c\\.yaml:11:\\d+ routes\\[0\\]\\.plugins\\.jwt-auth\\.forwardClaims\\.org: "x-tenant" is the header of claim "tenant" too \\("X-Tenant": one header in any case, `_` or `-`\\): it would hold whichever is set last; one claim per header',
    '.*forwardClaims\\.team: "x_TENANT" is the header of claim "tenant" too \\("X-Tenant"'].join('\n')))
})
