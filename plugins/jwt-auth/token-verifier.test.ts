import t from 'tap'
import { createHmac } from 'node:crypto'
import { createLocalJWKSet, SignJWT, type JWTVerifyOptions } from 'jose'
import { b64url, mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { keySet } from './key-set.ts'
import { MAX_KEY_TRIES } from './public-keys.ts'
import { tokenVerifier } from './token-verifier.ts'

// The verifier alone, with jose's local key sets: which key a token is checked with, and which
// error comes out (failures.test.ts says what each error means to the client).

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const [a, b, c] = await Promise.all([signingKey('RS256', 'a'), signingKey('RS256', 'b'), signingKey('RS256', 'c')])
const now = Math.floor(Date.now() / 1000)
const ALL: JWTVerifyOptions = { algorithms: ['RS256', 'HS256', 'HS384'], requiredClaims: ['exp'] }
const keysOf = (...keys: Array<typeof a>) => ({ key: createLocalJWKSet({ keys: keys.map(k => k.jwk) }), generation: 0 })
/** The same keys without kid, as PEM keys and many providers' single-key sets are. */
const kidless = (...keys: Array<typeof a>) => ({ key: createLocalJWKSet({ keys: keys.map(k => ({ ...k.jwk, kid: undefined })) }), generation: 0 })
const hs = (alg: 'HS256' | 'HS384', secret: string, claims = {}) =>
  new SignJWT({ sub: 'svc', ...claims }).setProtectedHeader({ alg }).setExpirationTime('1h').sign(Buffer.from(secret, 'utf8'))

/** What verifying `token` gives: its sub, or the error's code. */
async function outcome (verify: (token: string) => Promise<{ sub?: string }>, token: string): Promise<string> {
  try {
    return `sub ${(await verify(token)).sub}`
  } catch (err) {
    return (err as { code?: string }).code ?? String(err)
  }
}

t.test('the key set for asymmetric algorithms, the secret for HMAC', async t => {
  const verify = tokenVerifier(keysOf(a, b), SECRET, ALL)
  t.equal(await outcome(verify, await mint(a, { sub: 'alice' })), 'sub alice')
  t.equal(await outcome(verify, await mint(b, { sub: 'bob' })), 'sub bob')
  t.equal(await outcome(verify, await hs('HS256', SECRET)), 'sub svc')
  t.equal(await outcome(verify, await hs('HS384', SECRET)), 'sub svc', 'HS384 with the same secret')
  t.equal(await outcome(verify, await hs('HS256', SECRET + 'x')), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED')
  t.equal(await outcome(verify, await mint(c, { sub: 'carol' })), 'ERR_JWKS_NO_MATCHING_KEY')
  t.equal(await outcome(verify, await mint(a, { sub: 'alice', exp: now - 60 })), 'ERR_JWT_EXPIRED', 'jose\'s options apply')
  t.equal(await outcome(verify, await hs('HS256', 'é'.repeat(32))), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'a secret other than the configured one')
  const utf8 = tokenVerifier(undefined, 'é'.repeat(32), ALL)
  t.equal(await outcome(utf8, await hs('HS256', 'é'.repeat(32))), 'sub svc', 'the secret is taken as UTF-8')
})

t.test('HMAC never gets a public key, an asymmetric algorithm never the secret', async t => {
  // Algorithm confusion: HS256 keyed with the PEM public key the attacker knows.
  const confused = (key: typeof a) => {
    const input = `${b64url({ alg: 'HS256', kid: key.kid })}.${b64url({ sub: 'mallory', exp: now + 60 })}`
    return `${input}.${createHmac('sha256', key.pem).update(input).digest('base64url')}`
  }
  t.equal(await outcome(tokenVerifier(keysOf(a), undefined, ALL), confused(a)), 'ERR_JOSE_ALG_NOT_ALLOWED', 'no secret: HMAC is not allowed, the key set is not asked')
  t.equal(await outcome(tokenVerifier(keysOf(a), SECRET, ALL), confused(a)), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'with a secret: checked with the secret only')
  t.equal(await outcome(tokenVerifier(undefined, SECRET, ALL), await mint(a, { sub: 'alice' })), 'ERR_JOSE_ALG_NOT_ALLOWED', 'no key set: RS256 is not allowed')
  // A JWK set holding the secret as an oct key: HS256 must still go to the configured secret.
  const oct = { key: createLocalJWKSet({ keys: [{ kty: 'oct', k: Buffer.from('another-secret-of-at-least-32-characters').toString('base64url'), alg: 'HS256' }] }), generation: 0 }
  t.equal(await outcome(tokenVerifier(oct, SECRET, ALL), await hs('HS256', 'another-secret-of-at-least-32-characters')), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    'an HMAC token is never checked with the key set')
})

t.test('several keys fit a token without kid: each is tried', async t => {
  const verify = tokenVerifier(kidless(a, b, c), undefined, ALL)
  for (const [key, name] of [[a, 'the first'], [b, 'the second'], [c, 'the last']] as const) {
    t.equal(await outcome(verify, await mint(key, { sub: key.kid }, { kid: undefined })), `sub ${key.kid}`, `signed by ${name} key`)
  }
  const stranger = await signingKey('RS256')
  t.equal(await outcome(verify, await mint(stranger, { sub: 'x' }, { kid: undefined })), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'by none of them: a bad signature')
  for (const [key, name] of [[a, 'the first'], [b, 'the second'], [c, 'the last']] as const) {
    t.equal(await outcome(verify, await mint(key, { sub: key.kid, exp: now - 60 }, { kid: undefined })), 'ERR_JWT_EXPIRED',
      `expired, signed by ${name} key: the error of the key whose signature fits`)
  }
  t.equal(await outcome(tokenVerifier(kidless(a), undefined, ALL), await mint(b, { sub: 'b' }, { kid: undefined })), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'one key only: jose checks it directly')
})

t.test('a token whose kid picks no key is checked with 3 keys at most (MAX_KEY_TRIES): signed by the 4th or 5th, refused, the signatures checked counted', async t => {
  // Signature checks counted where jose makes them (WebCrypto), not timed: 100 ES512 keys tried in turn cost 110 ms of CPU a token.
  const subtle = globalThis.crypto.subtle
  const verifySignature = subtle.verify.bind(subtle)
  let checks = 0
  subtle.verify = (...args: Parameters<typeof verifySignature>) => { checks++; return verifySignature(...args) }
  t.teardown(() => { delete (subtle as { verify?: unknown }).verify })
  t.equal(MAX_KEY_TRIES, 3)
  const five = await Promise.all(Array.from({ length: 5 }, (_, i) => signingKey('RS256', `k${i + 1}`)))
  const verify = tokenVerifier(kidless(...five), undefined, ALL)
  const tried = async (key: typeof a) => {
    checks = 0
    return [await outcome(verify, await mint(key, { sub: key.kid }, { kid: undefined })), checks]
  }
  t.same(await tried(five[0] as typeof a), ['sub k1', 1])
  t.same(await tried(five[2] as typeof a), ['sub k3', 3], 'the 3rd: three signatures checked')
  t.same(await tried(five[3] as typeof a), ['ERR_TOO_MANY_KEYS', 3], 'the 4th: refused after three')
  t.same(await tried(five[4] as typeof a), ['ERR_TOO_MANY_KEYS', 3], 'the 5th too')
  const stranger = await signingKey('RS256')
  t.same(await tried(stranger), ['ERR_TOO_MANY_KEYS', 3], 'a junk token: three checks, whatever the number of keys')

  // The same keys with their kid, as every major provider publishes them: a token without kid is no one's.
  for (const anyKid of [false, true]) {
    const named = tokenVerifier({ key: keySet(five.map(k => k.jwk), anyKid), generation: 0 }, undefined, ALL)
    checks = 0
    t.equal(await outcome(named, await mint(five[0] as typeof a, { sub: 'k1' }, { kid: undefined })), 'ERR_JWT_MISSING_KID', `every key has a kid (${anyKid ? 'static' : 'remote'} set): missing_kid`)
    t.equal(checks, 0, 'no signature checked')
  }
})
