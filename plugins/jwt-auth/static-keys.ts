import { createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createLocalJWKSet, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose'
import { ASYMMETRIC } from './schema.ts'

type Alg = typeof ASYMMETRIC[number]

/** The algorithms a public key can verify. */
function algorithmsOf (jwk: JWK): Alg[] {
  if (typeof jwk.alg === 'string') return (ASYMMETRIC as readonly string[]).includes(jwk.alg) ? [jwk.alg as Alg] : []
  if (jwk.kty === 'RSA') return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']
  if (jwk.kty === 'EC') return jwk.crv === 'P-256' ? ['ES256'] : jwk.crv === 'P-384' ? ['ES384'] : jwk.crv === 'P-521' ? ['ES512'] : []
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return ['EdDSA', 'Ed25519']
  return []
}

/** A JWK given as a static key, unless it is private or symmetric (`where` names it in the error). */
function publicJwk (k: JWK, where: string): JWK {
  if ('d' in k || k.kty === 'oct') throw new Error(`jwt-auth ${where}: a private or symmetric JWK; give the public key (use secret for HMAC)`)
  return k
}

/** PEM (SPKI or certificate), JWK objects and a JWKS file, as one key set; private keys are refused. */
export function staticKeySet (keys: ReadonlyArray<string | JWK>, jwksFile: string | undefined) {
  const jwks: JWK[] = keys.map((k, i) => {
    if (typeof k !== 'string') return publicJwk(k, `keys[${i}]`)
    if (k.includes('PRIVATE KEY')) throw new Error(`jwt-auth keys[${i}]: a private key; give the public key or certificate`)
    const key = createPublicKey(k)
    return key.export({ format: 'jwk' }) as JWK
  })
  if (jwksFile !== undefined) {
    const file = JSON.parse(readFileSync(jwksFile, 'utf8')) as JSONWebKeySet
    if (!Array.isArray(file.keys)) throw new Error(`jwt-auth jwksFile ${jwksFile}: not a JSON Web Key Set ({ "keys": [...] })`)
    jwks.push(...file.keys.map((k, i) => publicJwk(k, `jwksFile ${jwksFile} keys[${i}]`)))
  }
  // PEM keys carry no kid: they verify tokens whatever kid they name, unless a JWK has that kid.
  const kids = new Set(jwks.map(k => k.kid).filter(k => k !== undefined))
  const keyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid !== undefined) })
  const unkeyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid === undefined) })
  const key: JWTVerifyGetKey = header => header.kid !== undefined && kids.has(header.kid) ? keyed(header) : unkeyed({ alg: header.alg })
  return { key, algorithms: [...new Set(jwks.flatMap(algorithmsOf))] }
}
