import t from 'tap'
import { CompactSign, createLocalJWKSet, exportPKCS8, jwtVerify, SignJWT, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import { b64url, mint, signByHand, signingKey } from '../../test/helpers/identity-provider.ts'
import { failureOf } from './failures.ts'
import { keySet } from './key-set.ts'
import { MAX_KEY_TRIES } from './public-keys.ts'
import { KeysUnavailable } from './remote-keys.ts'
import { tokenVerifier } from './token-verifier.ts'

// What each of jose's errors means for the client: the errors are real ones, from jwtVerify on
// tokens made to fail one way each; the answers are written out whole.

const rsa = await signingKey('RS256', 'rsa-1')
const keys = createLocalJWKSet({ keys: [rsa.jwk] })
const now = Math.floor(Date.now() / 1000)
const ISS = 'https://idp.example.com'
const options: JWTVerifyOptions = { algorithms: ['RS256'], issuer: ISS, audience: 'api', requiredClaims: ['exp'] }
const good = { iss: ISS, aud: 'api', sub: 'alice' }

/** The error jwtVerify throws for this token (the test fails if it verifies). */
async function errorOf (token: string, key: JWTVerifyGetKey = keys, opts: JWTVerifyOptions = options): Promise<unknown> {
  try {
    await jwtVerify(token, key, opts)
  } catch (err) {
    return err
  }
  throw new Error('the token verified')
}

const invalid = (reason: string, description: string) => ({ status: 401, reason, code: 'invalid_token', description })

t.test('jose errors, each as the client sees it', async t => {
  const [h, p, s] = (await mint(rsa, good)).split('.') as [string, string, string]
  const cases: Array<[string, Promise<unknown>, object]> = [
    ['expired', errorOf(await mint(rsa, { ...good, exp: now - 60 })), invalid('expired', 'the token has expired')],
    ['nbf in the future', errorOf(await mint(rsa, { ...good, nbf: now + 3600 })), invalid('not_yet_valid', 'the token is not valid yet')],
    ['another issuer', errorOf(await mint(rsa, { ...good, iss: 'https://evil.example.com' })), invalid('wrong_issuer', 'the token is from another issuer')],
    ['another audience', errorOf(await mint(rsa, { ...good, aud: 'other' })), invalid('wrong_audience', 'the token is for another audience')],
    ['no exp', errorOf(await new SignJWT(good).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).sign(rsa.privateKey)), invalid('missing_exp', 'the token has no expiry (exp)')],
    // Not a number: malformed, the three alike (not expired, not valid later, nor a claim a route asks for).
    ['exp not a number', errorOf(await mint(rsa, { ...good, exp: 'tomorrow' as unknown as number })), invalid('malformed', 'the token is malformed')],
    ['nbf not a number', errorOf(await mint(rsa, { ...good, nbf: 'x' as unknown as number })), invalid('malformed', 'the token is malformed')],
    ['iat not a number', errorOf(await mint(rsa, { ...good, iat: 'today' as unknown as number })), invalid('malformed', 'the token is malformed')],
    ['alg not allowed', errorOf(await mint(rsa, good), keys, { ...options, algorithms: ['ES256'] }), invalid('alg_not_allowed', 'the token\'s algorithm is not allowed')],
    ['tampered payload', errorOf(`${h}.${b64url({ ...good, exp: now + 60, sub: 'mallory' })}.${s}`), invalid('bad_signature', 'the token\'s signature is invalid')],
    ['unknown kid', errorOf(await mint(rsa, good, { kid: 'rsa-2' })), invalid('unknown_key', 'the token is signed with an unknown key')],
    ['no kid, every key has one', errorOf(await mint(rsa, good, { kid: undefined }), keySet([rsa.jwk], false)), invalid('missing_kid', 'the token names no kid, and every key of the set has one')],
    ['unknown crit', errorOf(signByHand({ alg: 'RS256', kid: 'rsa-1', crit: ['x-custom'], 'x-custom': 1 }, { ...good, exp: now + 60 }, await exportPKCS8(rsa.privateKey))), invalid('unsupported', 'the token uses an unsupported header or critical extension')],
    ['two parts', errorOf(`${h}.${p}`), invalid('malformed', 'the token is malformed')],
    ['not base64url', errorOf(`${h}.${p}.***`), invalid('malformed', 'the token is malformed')],
    ['payload not JSON, signed', errorOf(await new CompactSign(Buffer.from('not json')).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).sign(rsa.privateKey)), invalid('malformed', 'the token is malformed')]
  ]
  for (const [name, err, expected] of cases) t.same(failureOf(await err), expected, name)
})

t.test('the key set\'s own errors, and anything else', async t => {
  const unavailable = { status: 503, reason: 'keys_unavailable', code: 'auth_unavailable', description: 'the identity provider\'s keys could not be fetched; try again later' }
  // Retry-After: the seconds until the next fetch may run, rounded up, at least 1.
  t.same(failureOf(new KeysUnavailable('no key set could be fetched yet', 11_200)), { ...unavailable, retryAfter: 12 })
  t.same(failureOf(new KeysUnavailable('no key set could be fetched yet', 0)), { ...unavailable, retryAfter: 1 })
  const kidless = Array.from({ length: MAX_KEY_TRIES + 1 }, () => signingKey('RS256'))
  const set = { key: createLocalJWKSet({ keys: (await Promise.all(kidless)).map(k => ({ ...k.jwk, kid: undefined })) }), generation: 0 }
  const last = await kidless.at(-1) as typeof rsa
  const tooMany = await tokenVerifier(set, undefined, options)(await mint(last, good, { kid: undefined })).then(() => undefined, (err: unknown) => err)
  t.same(failureOf(tooMany), invalid('too_many_keys', 'more keys fit the token than are tried, and none of those tried verifies it'))
  t.same(failureOf({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' }), invalid('claim_mismatch', 'the token\'s unknown claim is not accepted'), 'a claim error naming no claim')
  t.same(failureOf({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'exp', reason: 'check_failed' }), invalid('claim_mismatch', 'the token\'s exp claim is not accepted'),
    'exp is "missing" only when jose says so')
  t.same(failureOf({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'sub', reason: 'missing' }), invalid('claim_mismatch', 'the token\'s sub claim is not accepted'),
    'another missing claim is not a missing exp')
  t.same(failureOf(new Error('boom')), invalid('malformed', 'the token is malformed'))
  t.same(failureOf({}), invalid('malformed', 'the token is malformed'))
})
