import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jwtVerify } from 'jose'
import type { PluginSetupContext } from '../../src/index.ts'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { IdentityProvider, mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { until } from '../../test/helpers/wait.ts'
import { checkJwtAuth } from './check.ts'
import { keySource } from './key-source.ts'
import { RemoteKeys } from './remote-keys.ts'
import type { JwtAuthConfig } from './schema.ts'

// Which keys a route gets from its config, and the algorithms it allows by default; with a
// setup context of our own, whose ctx.shared records the keys it is asked for.

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']
const HMAC = ['HS256', 'HS384', 'HS512']
const rs = await signingKey('RS256', 'rs')
const rsJwk = rs.jwk as { kty: string }
const idp = await IdentityProvider.start()
t.teardown(() => idp.close())
const served = idp.serve('/jwks', [rs])
const other = idp.serve('/other', [rs])

const made: RemoteKeys[] = []
t.teardown(() => { for (const k of made) k.dispose() })

function context (shared = new Map<string, unknown>()) {
  const { log, lines } = memoryLogger()
  const noop = { inc () {} }
  const ctx = {
    routeName: 'orders',
    log,
    hookTimeoutMs: 30_000,
    metrics: { counter: () => ({ labels: () => noop }) },
    shared<T> (key: string, create: () => T): T {
      if (!shared.has(key)) {
        const value = create()
        if (value instanceof RemoteKeys) made.push(value)
        shared.set(key, value)
      }
      return shared.get(key) as T
    }
  } as unknown as PluginSetupContext
  return { ctx, lines, shared }
}
const source = (config: Partial<JwtAuthConfig>, ctx = context().ctx) => keySource(config as JwtAuthConfig, ctx)
const subOf = async (keys: ReturnType<typeof source>['keys'], token: string) => (await jwtVerify(token, keys?.key ?? (() => { throw new Error('no keys') }))).payload.sub

t.test('static keys: their algorithms, plus HMAC with a secret; never a remote fetch', async t => {
  const s = source({ keys: [rs.pem] })
  t.same(s.algorithms, ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'])
  t.equal(s.keys?.generation, 0)
  t.equal(await subOf(s.keys, await mint(rs, { sub: 'alice' })), 'alice')
  t.same(source({ keys: [rsJwk], secret: SECRET }).algorithms, ['RS256', ...HMAC])
  t.same(source({ keys: [rsJwk], issuer: idp.url }).algorithms, ['RS256'], 'an issuer with static keys is only checked against iss')
  t.equal(idp.discoveryFetches, 0, 'no discovery for it')
})

t.test('a JWKS file alone is static keys too', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-jwks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [rs.jwk] }))
  const s = source({ jwksFile: file })
  t.same(s.algorithms, ['RS256'])
  t.equal(await subOf(s.keys, await mint(rs, { sub: 'alice' })), 'alice')
})

t.test('a secret alone: HMAC only, no key set; with an issuer, no discovery either', async t => {
  t.same(source({ secret: SECRET }), { keys: undefined, algorithms: HMAC })
  t.same(source({ secret: SECRET, issuer: idp.url }), { keys: undefined, algorithms: HMAC })
  t.equal(idp.discoveryFetches, 0)
})

t.test('what the config alone shows is checked at load: keys from two sources, algorithms without their key', async t => {
  const conflict = [{ path: ['jwksUri'], message: 'not with static keys (keys, jwksFile): one source of keys' }]
  t.same(checkJwtAuth({ keys: [rs.pem], jwksUri: `${idp.url}/jwks` }), conflict)
  t.same(checkJwtAuth({ jwksFile: '/nonexistent.json', jwksUri: `${idp.url}/jwks` }), conflict, 'jwksFile counts as static keys')
  t.same(checkJwtAuth({ secret: SECRET, issuer: idp.url, algorithms: ['RS256', 'HS256'] }), [{ path: ['algorithms'], message: 'RS256 need jwksUri, keys or jwksFile (with secret, issuer is only checked against iss: no discovery)' }],
    'an issuer with a secret is only checked in claims: no keys from it')
  t.same(checkJwtAuth({ issuer: idp.url, algorithms: ['RS256', 'HS512'] }), [{ path: ['algorithms'], message: 'HS512 need secret' }])
  t.same(checkJwtAuth({ issuer: idp.url, secret: SECRET }), [], 'algorithms by default: those the keys and secret allow')
  const withUser = checkJwtAuth({ issuer: idp.url.replace('://', '://svc:pw@') })
  t.same(withUser.map(p => p.path), [['issuer']], 'an issuer with a user and password: refused (no iss holds them)')
  t.match(withUser[0]?.message, /^holds a user and password, which no token's iss has: give them in jwksUri/)
  t.same(checkJwtAuth({ issuer: `${idp.url}/a@b` }), [], 'an @ in its path is no user')
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, secret: SECRET, algorithms: ['RS256', 'HS256'] }), [])
  t.same(checkJwtAuth({ keys: [rs.pem], algorithms: ['RS256', 'ES256'] }), [], 'one algorithm a key fits is enough')
  t.same(checkJwtAuth({ keys: [rsJwk], algorithms: ['RS512', 'ES256'] }), [{ path: ['algorithms'], message: 'RS512, ES256 fit none of the keys (they verify RS256)' }])
  t.match(checkJwtAuth({ keys: [rs.pem, '-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----'] }), [{ path: ['keys', 1], message: /^not a PEM public key or certificate: ./ }])
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { timeout: '61s', cooldown: '25d', refresh: 7 * 86_400_000 + 1, maxRefresh: '30d' } }), [
    { path: ['jwks', 'timeout'], message: 'must be at most 1m' },
    { path: ['jwks', 'cooldown'], message: 'must be at most 1d' },
    { path: ['jwks', 'refresh'], message: 'must be at most 7d' },
    { path: ['jwks', 'maxRefresh'], message: 'must be at most 7d' }
  ], 'jwks durations past their ceilings (a Node timer cannot wait past 24.8 days)')
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { timeout: 60_000, cooldown: '24h', refresh: '7d', maxRefresh: '168h' } }), [], 'at the ceilings')
  // Floors: a fetch cut at once never succeeds (503 for ever); a refresh every second polls the provider for nothing.
  const polls = 'a new key is fetched on its first token anyway (unknown kid); refreshing more often polls the provider for nothing'
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { timeout: '0s', refresh: 0, maxRefresh: '9s' } }), [
    { path: ['jwks', 'timeout'], message: 'must be at least 100ms: a fetch cut sooner fails however the provider answers: 503 auth_unavailable until a set is fetched' },
    { path: ['jwks', 'refresh'], message: `must be at least 10s: ${polls}` },
    { path: ['jwks', 'maxRefresh'], message: `must be at least 10s: ${polls}` },
    { path: ['jwks', 'maxRefresh'], message: 'must be at least jwks.cooldown (30s, its default): it would refresh the key set more often than the cooldown lets any fetch run' }
  ])
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { cooldown: '2h', maxRefresh: '1h' } }), [
    { path: ['jwks', 'maxRefresh'], message: 'must be at least jwks.cooldown (2h): it would refresh the key set more often than the cooldown lets any fetch run' }
  ], 'maxRefresh wins over the cooldown: not below it')
  // Left out, the cooldown is 30 s, above maxRefresh's floor: maxRefresh 10s polled the provider every 10 s.
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { maxRefresh: '10s' } }), [
    { path: ['jwks', 'maxRefresh'], message: 'must be at least jwks.cooldown (30s, its default): it would refresh the key set more often than the cooldown lets any fetch run' }
  ], 'not below the default cooldown either')
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { maxRefresh: '30s' } }), [], 'maxRefresh equal to the default cooldown')
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { timeout: '100ms', cooldown: 0, refresh: '10s', maxRefresh: 10_000 } }), [], 'at the floors')
  t.same(checkJwtAuth({ jwksUri: `${idp.url}/jwks`, jwks: { cooldown: '1h', maxRefresh: '60m' } }), [], 'maxRefresh equal to the cooldown')
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-jwks-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const empty = join(dir, 'empty.json')
  writeFileSync(empty, '{ "keys": [] }')
  t.same(checkJwtAuth({ jwksFile: empty }), [{ path: ['jwksFile'], message: 'no key to verify tokens with' }])
  t.same(checkJwtAuth({ jwksFile: empty, secret: SECRET }), [], 'with a secret, HMAC tokens can be verified')
})

t.test('remote keys: every asymmetric algorithm; from jwksUri, else the issuer\'s discovery', async t => {
  const viaUri = source({ jwksUri: `${idp.url}/other` })
  t.same(viaUri.algorithms, ASYMMETRIC)
  t.equal(await subOf(viaUri.keys, await mint(rs, { sub: 'alice' })), 'alice')
  t.equal(other.fetches, 1)
  t.equal(idp.discoveryFetches, 0, 'jwksUri: no discovery')
  t.same(source({ jwksUri: `${idp.url}/other`, issuer: idp.url, secret: SECRET }).algorithms, [...ASYMMETRIC, ...HMAC], 'with a secret, HMAC too')

  const viaIssuer = source({ issuer: idp.url })
  t.ok(await until(() => served.fetches === 1, 5_000), 'fetched at setup, before any token comes')
  t.equal(idp.discoveryFetches, 1, 'the issuer: discovery, then the jwks_uri it names')
  t.equal(await subOf(viaIssuer.keys, await mint(rs, { sub: 'bob' })), 'bob')
  t.equal(served.fetches, 1)
})

t.test('one key set per source and fetch settings, shared by the routes that name it; a warning for http://', async t => {
  const { ctx, lines, shared } = context()
  const a = source({ jwksUri: `${idp.url}/jwks` }, ctx)
  const b = source({ jwksUri: `${idp.url}/jwks`, secret: SECRET, jwks: {} }, ctx)
  t.equal(a.keys, b.keys, 'the same source: the same key set')
  t.not(source({ jwksUri: `${idp.url}/jwks`, jwks: { cooldown: '1m' } }, ctx).keys, a.keys, 'other settings: another')
  t.not(source({ issuer: `${idp.url}/jwks` }, ctx).keys, a.keys, 'the same URL as an issuer: another')
  // The settings each key set is fetched with: the defaults (5s, 30s, 10m, 24h), overridden one by one.
  const uri = JSON.stringify(`${idp.url}/jwks`)
  t.same([...shared.keys()], [
    `keys {"source":{"jwksUri":${uri}},"timeoutMs":5000,"cooldownMs":30000,"refreshMs":600000,"maxRefreshMs":86400000}`,
    `keys {"source":{"jwksUri":${uri}},"timeoutMs":5000,"cooldownMs":60000,"refreshMs":600000,"maxRefreshMs":86400000}`,
    `keys {"source":{"issuer":${uri}},"timeoutMs":5000,"cooldownMs":30000,"refreshMs":600000,"maxRefreshMs":86400000}`
  ])
  source({ jwksUri: `${idp.url}/jwks`, jwks: { timeout: '1s', cooldown: '2s', refresh: '3s', maxRefresh: '4s' } }, ctx)
  t.equal([...shared.keys()][3], `keys {"source":{"jwksUri":${uri}},"timeoutMs":1000,"cooldownMs":2000,"refreshMs":3000,"maxRefreshMs":4000}`)
  const warnings = lines.filter(l => l.msg === 'jwt-auth: keys fetched over plain http://; use https:// in production')
  t.same(warnings.map(l => [l.level, l.url]), [[40, `${idp.url}/jwks`], [40, `${idp.url}/jwks`], [40, `${idp.url}/jwks`], [40, `${idp.url}/jwks`]],
    'once per key set, at warn')

  const quiet = context()
  source({ jwksUri: 'https://127.0.0.1:1/jwks', jwks: { timeout: '1s' } }, quiet.ctx)
  t.same(quiet.lines.filter(l => typeof l.msg === 'string' && l.msg.includes('plain http')), [], 'https://: no warning')

  const secret = context()
  source({ jwksUri: 'http://svc:S3cretPw@127.0.0.1:1/jwks', jwks: { timeout: '1s' } }, secret.ctx)
  t.same(secret.lines.filter(l => typeof l.msg === 'string' && l.msg.includes('plain http')).map(l => l.url), ['http://[redacted]@127.0.0.1:1/jwks'], 'its user and password hidden')
})
