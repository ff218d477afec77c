import t from 'tap'
import { createPrivateKey, generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jwtVerify, SignJWT, type JWK } from 'jose'
import { createTestCa } from '../../test/helpers/certs.ts'
import { mint, signingKey, type SigningKey } from '../../test/helpers/identity-provider.ts'
import { algorithmsOf, readPublicKeys } from './public-keys.ts'
import { staticKeySet } from './static-keys.ts'
import { tokenVerifier } from './token-verifier.ts'

// Static keys alone: the algorithms they allow by default, which key a token is checked with
// (jose's jwtVerify with the set's key function), and the keys refused at load.

const dir = mkdtempSync(join(tmpdir(), 'portcullis-jwks-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const file = (name: string, content: unknown) => {
  const path = join(dir, name)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}
const withoutAlg = ({ alg: _alg, ...jwk }: JWK) => jwk
const [rs, ps, es256, es384, es512, ed] = await Promise.all([
  signingKey('RS256', 'rs'), signingKey('PS384', 'ps'), signingKey('ES256', 'es256'), signingKey('ES384', 'es384'), signingKey('ES512', 'es512'), signingKey('EdDSA', 'ed')
])
const algorithms = (keys: Array<string | JWK>) => staticKeySet(keys, undefined).algorithms

t.test('default algorithms: the key\'s alg, else every one its type and curve can verify', async t => {
  const RSA = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
  t.same(algorithms([rs.pem]), RSA, 'an RSA PEM key: RS* and PS*')
  t.same(algorithms([withoutAlg(rs.jwk)]), RSA, 'an RSA JWK without alg')
  t.same(algorithms([rs.jwk]), ['RS256'], 'alg given: that one only')
  t.same(algorithms([ps.jwk]), ['PS384'])
  t.same(algorithms([es256.pem]), ['ES256'], 'P-256')
  t.same(algorithms([withoutAlg(es384.jwk)]), ['ES384'], 'P-384')
  t.same(algorithms([withoutAlg(es512.jwk)]), ['ES512'], 'P-521')
  t.same(algorithms([ed.pem]), ['EdDSA', 'Ed25519'], 'Ed25519: both names of its algorithm')
  t.same(algorithmsOf({ ...withoutAlg(es256.jwk), crv: 'secp256k1' }), [], 'a curve no algorithm allows')
  t.same(algorithmsOf({ kty: 'OKP', crv: 'X25519', x: 'hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo' }), [], 'X25519 signs nothing')
  t.same(algorithmsOf({ kty: 'XYZ', crv: 'Ed25519', x: ed.jwk.x }), [], 'a key type that is not OKP, whatever its curve')
  t.same(algorithmsOf({ ...rs.jwk, alg: 'HS256' }), [], 'an alg that is not an asymmetric one')
  t.same(algorithmsOf({ ...rs.jwk, alg: 'RSA-OAEP' }), [], 'an encryption alg')
  t.same(algorithms([rs.jwk, withoutAlg(es384.jwk), rs.pem, ed.jwk]), [...RSA.filter(a => a === 'RS256'), 'ES384', ...RSA.filter(a => a !== 'RS256'), 'EdDSA'],
    'several keys: each algorithm once, in the order the keys give them')
})

t.test('refused at load, each at its key: private, symmetric, malformed and unusable keys, files that are no key set', async t => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const pkcs8 = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string
  const sec1 = privateKey.export({ format: 'pem', type: 'sec1' }) as string
  const x25519 = generateKeyPairSync('x25519').publicKey
  const problems = (keys: Array<string | JWK>, jwksFile?: string) => readPublicKeys(keys, jwksFile).problems
  t.same(problems([rs.pem, pkcs8]), [{ path: ['keys', 1], message: 'a private key; give the public key or certificate' }])
  t.same(problems([sec1]), [{ path: ['keys', 0], message: 'a private key; give the public key or certificate' }], 'an EC PRIVATE KEY too')
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK
  t.same(problems([rs.jwk, es256.jwk, privateJwk]), [{ path: ['keys', 2], message: 'a private or symmetric JWK; give the public key (use secret for HMAC)' }])
  t.same(problems([{ kty: 'oct', k: 'c2VjcmV0' }]), [{ path: ['keys', 0], message: 'a private or symmetric JWK; give the public key (use secret for HMAC)' }])
  t.match(problems(['-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n']), [{ path: ['keys', 0], message: /^not a PEM public key or certificate: / }])
  t.match(problems([{ kty: 'RSA', n: 'AQAB' }]), [{ path: ['keys', 0], message: /^not a usable public JWK: / }], 'a JWK missing its exponent')
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey
  t.same(problems([small.export({ format: 'pem', type: 'spki' }) as string, small.export({ format: 'jwk' })]), [
    { path: ['keys', 0], message: 'an RSA key of 1024 bits; signatures need 2048 bits or more' },
    { path: ['keys', 1], message: 'an RSA key of 1024 bits; signatures need 2048 bits or more' }
  ], 'an RSA key jose verifies nothing with (every token would be malformed)')
  t.same(problems([x25519.export({ format: 'pem', type: 'spki' }) as string, { kty: 'OKP', crv: 'X25519', x: 'hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo' }, { ...rs.jwk, alg: 'RSA-OAEP' }]), [
    { path: ['keys', 0], message: 'verifies no JWT signature algorithm (kty OKP, crv X25519)' },
    { path: ['keys', 1], message: 'verifies no JWT signature algorithm (kty OKP, crv X25519)' },
    { path: ['keys', 2], message: 'verifies no JWT signature algorithm (kty RSA, alg RSA-OAEP)' }
  ], 'a key for key agreement or encryption, as PEM or JWK')
  const privateFile = file('private.json', { keys: [rs.jwk, privateJwk] })
  t.same(problems([], privateFile), [{ path: ['jwksFile'], message: `${privateFile} keys[1]: a private or symmetric JWK; give the public key (use secret for HMAC)` }], 'in a JWKS file too')
  const notSet = file('not-a-set.json', { kty: 'RSA' })
  t.same(problems([], notSet), [{ path: ['jwksFile'], message: `${notSet}: not a JSON Web Key Set ({ "keys": [...] })` }])
  t.match(problems([], file('not-json.json', 'keys:')), [{ path: ['jwksFile'], message: /not-json\.json: Unexpected token/ }], 'not JSON')
  t.match(problems([], join(dir, 'missing.json')), [{ path: ['jwksFile'], message: /missing\.json: ENOENT/ }], 'missing')
  t.throws(() => staticKeySet([rs.pem, pkcs8], undefined), { message: 'jwt-auth keys[1]: a private key; give the public key or certificate' }, 'setup refuses what the check would')
  t.throws(() => staticKeySet([], notSet), { message: `jwt-auth jwksFile: ${notSet}: not a JSON Web Key Set ({ "keys": [...] })` })
})

t.test('which key verifies a token', async t => {
  const verifies = async (keys: Array<string | JWK>, jwksFile: string | undefined, token: string) => {
    const set = staticKeySet(keys, jwksFile)
    try {
      return `sub ${(await jwtVerify(token, set.key, { algorithms: set.algorithms })).payload.sub}`
    } catch (err) {
      return (err as { code: string }).code
    }
  }
  const other = await signingKey('RS256', 'other')
  const token = (key: SigningKey, header: Record<string, unknown> = {}) => mint(key, { sub: key.kid }, header)

  t.equal(await verifies([rs.pem], undefined, await token(rs)), 'sub rs', 'a PEM key: whatever kid the token names')
  t.equal(await verifies([rs.pem], undefined, await token(rs, { kid: undefined })), 'sub rs', 'or none')
  t.equal(await verifies([rs.pem], undefined, await token(other)), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'another key\'s token')
  t.equal(await verifies([rs.jwk], undefined, await token(rs)), 'sub rs', 'a JWK by its kid')
  t.equal(await verifies([rs.jwk], undefined, await token(rs, { kid: 'renamed' })), 'ERR_JWKS_NO_MATCHING_KEY', 'a JWK with a kid: not for another kid')
  t.equal(await verifies([withoutAlg({ ...rs.jwk, kid: undefined })], undefined, await token(rs, { kid: 'any' })), 'sub rs', 'a JWK without kid: any kid, as a PEM key')
  // A PEM key and a JWK with a kid: a token naming another kid is checked with the PEM key only.
  t.equal(await verifies([es256.pem, rs.jwk], undefined, await token(rs, { kid: 'renamed' })), 'ERR_JWKS_NO_MATCHING_KEY', 'not with the JWK of another kid')
  t.equal(await verifies([es256.pem, rs.jwk], undefined, await token(rs)), 'sub rs', 'the JWK for its own kid')
  t.equal(await verifies([es256.pem, rs.jwk], undefined, await token(es256, { kid: 'rs' })), 'ERR_JWKS_NO_MATCHING_KEY', 'a kid a JWK has goes to that JWK only, not the PEM keys')
  t.equal(await verifies([es256.pem, rs.jwk], undefined, await token(es256)), 'sub es256')

  // A token without kid: only the keys without kid its alg fits, as with the same set served remotely;
  // a JWK with a kid is never tried for it (every key checked in turn made junk tokens cost a signature check per key).
  t.equal(await verifies([rs.jwk], undefined, await token(rs, { kid: undefined })), 'ERR_JWT_MISSING_KID', 'a JWK with a kid: not for a token without one (every key has a kid: missing_kid)')
  t.equal(await verifies([rs.jwk, es256.pem], undefined, await token(rs, { kid: undefined })), 'ERR_JWKS_NO_MATCHING_KEY', 'nor is it beside a PEM key of another alg')
  t.equal(await verifies([rs.jwk, es256.pem], undefined, await token(es256, { kid: undefined })), 'sub es256', 'the PEM key is')
  const copied = file('copied.json', { keys: [rs.jwk, es256.jwk] })
  t.equal(await verifies([], copied, await token(es256, { kid: undefined })), 'ERR_JWT_MISSING_KID', 'a provider\'s JWKS copied into a file: its keys have a kid')
  t.equal(await verifies([], copied, await token(es256)), 'sub es256', 'as its tokens do')
  const unkeyed = file('unkeyed.json', { keys: [rs.jwk, es256.jwk, { ...ps.jwk, use: 'enc' }].map(k => ({ ...k, kid: undefined })) })
  t.equal(await verifies([], unkeyed, await token(es256, { kid: undefined })), 'sub es256', 'JWKs without kid: the key of the token\'s alg')
  t.equal(await verifies([], unkeyed, await token(rs, { kid: undefined })), 'sub rs')
  t.equal(await verifies([], unkeyed, await token(ps, { kid: undefined })), 'ERR_JWKS_NO_MATCHING_KEY', 'not an encryption key (use: enc)')
  const two = staticKeySet([rs.pem, other.pem], undefined)
  const verify = tokenVerifier({ key: two.key, generation: 0 }, undefined, { algorithms: two.algorithms })
  for (const key of [rs, other]) t.equal((await verify(await token(key, { kid: undefined }))).sub, key.kid, `several keys without kid fit: each is tried (${key.kid})`)

  const jwks = file('jwks.json', { keys: [es384.jwk, ed.jwk] })
  t.equal(await verifies([rs.pem], jwks, await token(es384)), 'sub es384', 'keys from the JWKS file')
  t.equal(await verifies([rs.pem], jwks, await token(ed)), 'sub ed')
  t.equal(await verifies([rs.pem], jwks, await token(rs)), 'sub rs', 'with the keys: list')
  t.same(staticKeySet([], jwks).algorithms, ['ES384', 'EdDSA'])
  t.same(staticKeySet([], file('empty.json', { keys: [] })).algorithms, [], 'an empty set allows nothing (refused at load: see checkJwtAuth)')

  const ca = createTestCa('jwt-issuer', fn => t.teardown(fn))
  const signed = await new SignJWT({ sub: 'from-cert' }).setProtectedHeader({ alg: 'ES256' }).sign(createPrivateKey(ca.key))
  t.equal(await verifies([ca.cert], undefined, signed), 'sub from-cert', 'a certificate\'s public key')
  t.same(staticKeySet([ca.cert], undefined).algorithms, ['ES256'])
})
