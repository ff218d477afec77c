import t from 'tap'
import { randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, SignJWT } from 'jose'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { IdentityProvider, mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { configFile, startFromFile } from '../../test/reload/helpers.ts'

// A secret beside jwksUri that is a member of a remote key (an RSA key's n, an EC or OKP key's x)
// cannot be caught at load: the set is fetched later. Anyone reading the public JWKS could sign
// HS256 tokens with it. Once a fetched set shows it, HMAC tokens are refused on its routes.

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const [rsa, ec, ed, other, stranger] = await Promise.all([
  signingKey('RS256', 'rsa-1'), signingKey('ES256', 'ec-1'), signingKey('EdDSA', 'ed-1'), signingKey('RS256', 'other'), signingKey('RS256', 'stranger')
])
const n = rsa.jwk.n as string
const up = await startUpstream()
t.teardown(() => up.close())
const idp = await IdentityProvider.start()
t.teardown(() => idp.close())

const ERROR = 'jwt-auth: the secret of these routes is a member of a key the key set publishes: anyone could sign HS256/384/512 tokens with it, so theirs are refused (401) until the secret is changed; give them a shared secret of their own'
const SIGNATURE = 'Bearer realm="portcullis", error="invalid_token", error_description="the token\'s signature is invalid"'

/** What an attacker signs, with jose, keyed with the text it read in the JWKS (as the gateway keys HMAC with the secret's UTF-8). */
const hs256 = (key: string) => new SignJWT({ sub: 'admin', aud: 'api' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(key))

const answer = async (url: string, token: string) => {
  const res = await request(url, { headers: { authorization: `Bearer ${token}` } })
  await res.body.dump()
  return { status: res.statusCode, challenge: res.headers['www-authenticate'] }
}

/** Polls the async `condition` every 50 ms until it holds or `maxMs` passes; whether it held. */
const eventually = async (condition: () => Promise<boolean>, maxMs: number): Promise<boolean> => {
  for (const start = performance.now(); !await condition();) {
    if (performance.now() - start >= maxMs) return false
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return true
}

const route = (name: string, plugin: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: { jwt-auth: ${plugin} } }`

t.test('a secret that is a member of a fetched key (n, in hex too; an EC or OKP x): HMAC tokens 401 as a bad signature, said once a fetch naming the routes, counted; RS256 and other secrets verify', async t => {
  idp.serve('/jwks', [rsa, ec, ed])
  const secrets: Record<string, string> = { hs1: n, hs2: n, hex: Buffer.from(n, 'base64url').toString('hex'), ecx: ec.jwk.x as string, edx: ed.jwk.x as string, shared: SECRET }
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${Object.entries(secrets).map(([name, secret]) => route(name, `{ jwksUri: "${idp.url}/jwks", audience: api, secret: "${secret}" }`)).join('\n')}
`, { admin: true })
  t.teardown(() => gw.close())
  await waitForLog(gw.logs, { msg: ERROR })
  for (const [name, secret] of Object.entries(secrets)) {
    const url = `${gw.url}/${name}`
    t.equal((await answer(url, await mint(rsa, { sub: 'alice', aud: 'api' }))).status, 200, `${name}: an RS256 token of the provider verifies`)
    if (name === 'shared') t.equal((await answer(url, await hs256(secret))).status, 200, 'a shared secret of its own verifies HS256')
    else t.same(await answer(url, await hs256(secret)), { status: 401, challenge: SIGNATURE }, `${name}: the HS256 token signed with the key's member is refused`)
  }
  const said = gw.logs.filter(l => l.msg === ERROR).map(l => ({ level: l.level, routes: l.routes, member: l.member, url: l.url }))
  t.same(said, [
    { level: 50, routes: ['hs1', 'hs2'], member: 'keys[0].n', url: `${idp.url}/jwks` },
    { level: 50, routes: ['hex'], member: 'keys[0].n', url: `${idp.url}/jwks` },
    { level: 50, routes: ['ecx'], member: 'keys[1].x', url: `${idp.url}/jwks` },
    { level: 50, routes: ['edx'], member: 'keys[2].x', url: `${idp.url}/jwks` }
  ], 'one line per secret for the one fetch, naming its routes and the member')
  const logged = JSON.stringify(gw.logs)
  for (const name of ['hs1', 'hex', 'ecx', 'edx']) t.notOk(logged.includes(secrets[name] as string), `${name}: the secret is in no line`)
  const failures = (name: string, reason: string) => metricValue(gw.adminUrl as string, `portcullis_auth_failures_total{route="${name}",plugin="jwt-auth",reason="${reason}"}`)
  t.same([await failures('hs1', 'public_secret'), await failures('hs1', 'bad_signature')], [1, 0], 'counted apart from bad signatures')
})

t.test('the member spelt as openssl, DER, a Kubernetes Secret or a kid print it (leading 00, colons, 0x, Modulus=, base64 of its text, the thumbprint, an EC point): HMAC tokens 401, counted as public_secret; a random secret verifies', async t => {
  idp.serve('/jwks-spellings', [rsa, ec])
  const nBytes = Buffer.from(n, 'base64url')
  const signed = Buffer.concat([Buffer.from([0]), nBytes])
  // openssl rsa -text -pubin: 15 bytes a line, indented.
  const colons = (bytes: Buffer) => [...bytes].map(b => b.toString(16).padStart(2, '0')).join(':').replace(/(.{45})/g, '$1\n    ')
  const thumbprint = await calculateJwkThumbprint(rsa.jwk, 'sha256')
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(ec.jwk.x as string, 'base64url'), Buffer.from(ec.jwk.y as string, 'base64url')])
  const secrets: Record<string, string> = {
    hex00: signed.toString('hex'),
    colons: colons(signed),
    b64zero: signed.toString('base64'),
    prefixed: `0x${nBytes.toString('hex')}`,
    modulus: `Modulus=${nBytes.toString('hex').toUpperCase()}`,
    wrapped: Buffer.from(n).toString('base64'),
    thumbprint,
    thumbhex: Buffer.from(thumbprint, 'base64url').toString('hex'),
    point: point.toString('hex'),
    pointcolons: colons(point)
  }
  const random = randomBytes(32).toString('base64url')
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${Object.entries({ ...secrets, random }).map(([name, secret]) => route(name, `{ jwksUri: "${idp.url}/jwks-spellings", audience: api, secret: ${JSON.stringify(secret)} }`)).join('\n')}
`, { admin: true })
  t.teardown(() => gw.close())
  await waitForLog(gw.logs, { msg: ERROR })
  const failures = (name: string) => metricValue(gw.adminUrl as string, `portcullis_auth_failures_total{route="${name}",plugin="jwt-auth",reason="public_secret"}`)
  for (const [name, secret] of Object.entries(secrets)) {
    t.same(await answer(`${gw.url}/${name}`, await hs256(secret)), { status: 401, challenge: SIGNATURE }, `${name}: the HS256 token signed with it is refused`)
    t.equal(await failures(name), 1, `${name}: counted as public_secret`)
  }
  t.same(gw.logs.filter(l => l.msg === ERROR).flatMap(l => l.routes).sort(), Object.keys(secrets).sort(), 'each said, the random secret not')
  t.equal((await answer(`${gw.url}/random`, await hs256(random))).status, 200, 'a random 32-byte secret verifies HS256')
  t.equal((await answer(`${gw.url}/random`, await mint(rsa, { sub: 'alice', aud: 'api' }))).status, 200, 'RS256 of the provider verifies')
})

t.test('with static keys, such spellings of a key\'s member are refused at load', async t => {
  const nHex = Buffer.from(n, 'base64url').toString('hex')
  const spellings = { hex00: `00${nHex}`, modulus: `Modulus=${nHex.toUpperCase()}`, thumbprint: await calculateJwkThumbprint(rsa.jwk, 'sha256') }
  for (const [what, secret] of Object.entries(spellings)) {
    await t.rejects(startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('s', `{ keys: [ ${JSON.stringify(rsa.pem)} ], secret: ${JSON.stringify(secret)} }`)}
`), /routes\[0\]\.plugins\.jwt-auth\.secret: (n|thumbprint) of a public key this config gives, which anyone may hold/, what)
  }
})

t.test('a provider up whose set has no usable key (empty, only use: enc): not installed, yet examined: HMAC tokens with a secret of their own verify, not 503', async t => {
  for (const [path, keys] of [['/jwks-empty', []], ['/jwks-enc', [{ ...rsa.jwk, use: 'enc' }]]] as const) {
    const state = idp.serve(path, [])
    state.keys = [...keys]
    const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('r', `{ jwksUri: "${idp.url}${path}", audience: api, secret: "${SECRET}" }`)}
`)
    t.teardown(() => gw.close())
    t.equal((await answer(`${gw.url}/r`, await hs256(SECRET))).status, 200, `${path}: the route's own secret verifies`)
    t.equal((await answer(`${gw.url}/r`, await mint(rsa, { sub: 'alice', aud: 'api' }))).status, 503, `${path}: RS256 has no set to verify with`)
  }
})

t.test('before any key set was fetched, HMAC tokens wait for one, as RS256 tokens do: 503 while the provider is down, then verified', async t => {
  const state = idp.serve('/jwks-down', [rsa])
  state.down = true
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('r', `{ jwksUri: "${idp.url}/jwks-down", audience: api, secret: "${SECRET}" }`)}
`)
  t.teardown(() => gw.close())
  t.ok(await until(() => state.fetches === 1), 'the fetch at setup failed')
  const token = await hs256(SECRET)
  t.equal((await answer(`${gw.url}/r`, token)).status, 503, 'no set yet: whether the secret is public is not known')
  state.down = false
  t.ok(await eventually(async () => (await answer(`${gw.url}/r`, token)).status === 200, 10_000), 'verified once a set shows it is not')
})

t.test('a key with the secret as its n joins the set: HMAC tokens verified (and cached) before are refused from that fetch on, and still once the key is gone', async t => {
  const state = idp.serve('/jwks-rotating', [rsa])
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('rot', `{ jwksUri: "${idp.url}/jwks-rotating", audience: api, secret: "${other.jwk.n as string}", jwks: { cooldown: 0 } }`)}
`)
  t.teardown(() => gw.close())
  const url = `${gw.url}/rot`
  const forged = await hs256(other.jwk.n as string)
  t.equal((await answer(url, forged)).status, 200, 'the set does not hold it yet: the token verifies (and is cached)')
  t.notOk(gw.logs.some(l => l.msg === ERROR), 'nothing said')
  state.keys = [rsa.jwk, other.jwk]
  // A token of the new kid fetches the set (once a second at most).
  const otherToken = await mint(other, { sub: 'bob', aud: 'api' })
  t.ok(await eventually(async () => (await answer(url, otherToken)).status === 200, 5_000), 'the new key is fetched')
  t.same(gw.logs.filter(l => l.msg === ERROR).map(l => [l.routes, l.member]), [[['rot'], 'keys[1].n']], 'said at that fetch')
  t.equal((await answer(url, forged)).status, 401, 'the cached token is refused')
  state.keys = [rsa.jwk]
  const fetches = state.fetches
  const strangerToken = await mint(stranger, { sub: 'eve', aud: 'api' })
  t.ok(await eventually(async () => { await answer(url, strangerToken); return state.fetches > fetches }, 5_000), 'fetched again, the key gone')
  t.equal((await answer(url, forged)).status, 401, 'the secret was published: refused still')
  t.equal(gw.logs.filter(l => l.msg === ERROR).length, 2, 'and said again at that fetch')
})

t.test('a reload to a secret the held set publishes: said when it goes into service, HMAC refused; a reload to a secret of its own verifies again', async t => {
  idp.serve('/jwks-reload', [rsa])
  const yaml = (secret: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('r', `{ jwksUri: "${idp.url}/jwks-reload", audience: api, secret: "${secret}" }`)}
`
  const cf = await configFile(yaml(SECRET))
  t.teardown(() => cf.remove())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const url = `${gw.url}/r`
  t.equal((await answer(url, await hs256(SECRET))).status, 200, 'a shared secret verifies')
  await cf.write(yaml(n))
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  t.same(gw.logs.filter(l => l.msg === ERROR).map(l => [l.routes, l.member]), [[['r'], 'keys[0].n']], 'said once, with no fetch: the set held is examined')
  t.equal((await answer(url, await hs256(n))).status, 401, 'an HS256 token signed with n is refused')
  t.equal((await answer(url, await mint(rsa, { sub: 'alice', aud: 'api' }))).status, 200, 'RS256 verifies')
  await cf.write(yaml(SECRET))
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  t.equal((await answer(url, await hs256(SECRET))).status, 200, 'a secret of its own verifies again')
})

t.test('a secret naming a key (`<kid>.<random>`, `<issuer>#<random>`) is no public part: HS256 verifies, beside jwksUri and static keys; a secret that is the kid is', async t => {
  const kid = 'portcullis-signing-key-2026-rotation-a'
  const issuer = 'https://login.example.com/tenant-1234/v2.0'
  const base = await signingKey('RS256', kid)
  const named = { ...base, jwk: { ...base.jwk, x5u: 'https://login.example.com/certs/portcullis-2026.pem', issuer } }
  idp.serve('/jwks-named', [named])
  const secrets: Record<string, string> = { kidPrefixed: `${kid}.${randomBytes(32).toString('base64url')}`, issuerHash: `${issuer}#${randomBytes(32).toString('base64url')}`, kidEqual: kid }
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${Object.entries(secrets).map(([name, secret]) => route(name, `{ jwksUri: "${idp.url}/jwks-named", audience: api, secret: ${JSON.stringify(secret)} }`)).join('\n')}
`)
  t.teardown(() => gw.close())
  await waitForLog(gw.logs, { msg: ERROR })
  t.equal((await answer(`${gw.url}/kidPrefixed`, await hs256(secrets.kidPrefixed as string))).status, 200, 'a secret holding the kid verifies HS256')
  t.equal((await answer(`${gw.url}/issuerHash`, await hs256(secrets.issuerHash as string))).status, 200, 'a secret holding a provider member (issuer) verifies HS256')
  t.same(await answer(`${gw.url}/kidEqual`, await hs256(kid)), { status: 401, challenge: SIGNATURE }, 'a secret that is the kid is refused')
  t.same(gw.logs.filter(l => l.msg === ERROR).map(l => [l.routes, l.member]), [[['kidEqual'], 'keys[0].kid']], 'only the secret that is the kid is said')

  const staticRoute = (secret: string) => `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('s', `{ keys: [ ${JSON.stringify(named.jwk)} ], audience: api, secret: ${JSON.stringify(secret)} }`)}
`
  const valid = await startGateway(staticRoute(secrets.kidPrefixed as string))
  t.teardown(() => valid.close())
  t.equal((await answer(`${valid.url}/s`, await hs256(secrets.kidPrefixed as string))).status, 200, 'static keys: a secret holding the kid is valid at load and verifies HS256')
  await t.rejects(startGateway(staticRoute(kid)), /routes\[0\]\.plugins\.jwt-auth\.secret: kid of a public key this config gives, which anyone may hold/, 'static keys: a secret that is the kid is refused at load')
})
