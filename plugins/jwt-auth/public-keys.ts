import { createPublicKey, type KeyObject } from 'node:crypto'
import type { JSONWebKeySet, JWK } from 'jose'
import { readFilePath, type PluginConfigProblem } from '../../src/index.ts'
import { ASYMMETRIC } from './schema.ts'

type Alg = typeof ASYMMETRIC[number]

/** The algorithms a public key can verify. */
export function algorithmsOf (jwk: JWK): Alg[] {
  if (typeof jwk.alg === 'string') return (ASYMMETRIC as readonly string[]).includes(jwk.alg) ? [jwk.alg as Alg] : []
  if (jwk.kty === 'RSA') return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
  if (jwk.kty === 'EC') return jwk.crv === 'P-256' ? ['ES256'] : jwk.crv === 'P-384' ? ['ES384'] : jwk.crv === 'P-521' ? ['ES512'] : []
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return ['EdDSA', 'Ed25519']
  return []
}

/**
 * Keys without kid a token is checked with, in turn, at most (token-verifier.ts): each try is a
 * signature check, and 100 ES512 keys tried in turn made one junk token cost 110 ms of CPU.
 */
export const MAX_KEY_TRIES = 3

/** Whether `jwk` is tried in turn for a token whose kid picks no key: no kid, and a signing key (jose leaves out use: enc). */
export const triedInTurn = (jwk: JWK): boolean => jwk.kid === undefined && (jwk.use === undefined || jwk.use === 'sig')

const reason = (err: unknown): string => (err as Error).message

/** A key (configured, or in a remote key set) as a public JWK, or what is wrong with it. */
export function publicJwk (k: string | JWK): JWK | string {
  let jwk: JWK
  let key: KeyObject
  if (typeof k === 'string') {
    if (k.includes('PRIVATE KEY')) return 'a private key; give the public key or certificate'
    try { key = createPublicKey(k); jwk = key.export({ format: 'jwk' }) as JWK } catch (err) { return `not a PEM public key or certificate: ${reason(err)}` }
  } else {
    if ('d' in k || k.kty === 'oct') return 'a private or symmetric JWK; give the public key (use secret for HMAC)'
    try { key = createPublicKey({ key: k, format: 'jwk' }) } catch (err) { return `not a usable public JWK: ${reason(err)}` }
    jwk = k
  }
  // jose verifies no RS* or PS* signature with a shorter key: each token would fail as malformed.
  const bits = key.asymmetricKeyDetails?.modulusLength
  if (bits !== undefined && bits < 2048) return `an RSA key of ${bits} bits; signatures need 2048 bits or more`
  if (algorithmsOf(jwk).length > 0) return jwk
  return `verifies no JWT signature algorithm (kty ${String(jwk.kty)}${jwk.crv === undefined ? '' : `, crv ${jwk.crv}`}${jwk.alg === undefined ? '' : `, alg ${jwk.alg}`})`
}

// JSON text where a path was expected: an object's start, or its "keys" member.
const JWKS_TEXT = /\{\s*"|"keys"/

/**
 * The static keys of a jwt-auth config (keys, then jwksFile's) as public JWKs, and what is wrong
 * with any of them at its key: read at load by the config check and again by setup, so that a
 * bad key is a config error at its line, found by `portcullis validate` too.
 */
export function readPublicKeys (keys: ReadonlyArray<string | JWK>, jwksFile: string | undefined): { jwks: JWK[], problems: PluginConfigProblem[] } {
  const jwks: JWK[] = []
  const problems: PluginConfigProblem[] = []
  const add = (k: string | JWK, path: PluginConfigProblem['path'], prefix = '') => {
    const jwk = publicJwk(k)
    if (typeof jwk === 'string') problems.push({ path, message: prefix + jwk })
    else jwks.push(jwk)
  }
  keys.forEach((k, i) => add(k, ['keys', i]))
  // The key set's JSON given for its path (a ${VAR} holding it): said so, never quoted (it was, three times).
  if (jwksFile !== undefined && JWKS_TEXT.test(jwksFile)) {
    problems.push({ path: ['jwksFile'], message: 'holds JWKS text, not a file path: write the key set to a file and give that file\'s path' })
  } else if (jwksFile !== undefined) {
    let set: JSONWebKeySet
    try {
      set = JSON.parse(readFilePath(jwksFile).toString('utf8')) as JSONWebKeySet
    } catch (err) {
      problems.push({ path: ['jwksFile'], message: `${jwksFile}: ${reason(err)}` })
      return { jwks, problems }
    }
    if (!Array.isArray(set?.keys)) problems.push({ path: ['jwksFile'], message: `${jwksFile}: not a JSON Web Key Set ({ "keys": [...] })` })
    else set.keys.forEach((k, i) => add(k, ['jwksFile'], `${jwksFile} keys[${i}]: `))
  }
  return { jwks, problems }
}
