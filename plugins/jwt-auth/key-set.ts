import { createLocalJWKSet, type CryptoKey, type FlattenedJWSInput, type JWK, type JWSHeaderParameters } from 'jose'

/** jose's key function of a local set: the key for a token's header (and unprotected header). */
export type KeyFunction = (header?: JWSHeaderParameters, token?: FlattenedJWSInput) => Promise<CryptoKey>

/**
 * A key set's key function. A token naming a kid gets the key with that kid; a token without kid
 * only the keys without one, tried in turn (token-verifier.ts, MAX_KEY_TRIES at most): a set whose
 * keys all have a kid (every major provider's) refuses it as an unknown key without any signature
 * check. `anyKid`: keys without kid verify a token naming a kid no key has too, as PEM keys, which
 * cannot have one, do in a static set.
 */
export function keySet (jwks: readonly JWK[], anyKid: boolean): KeyFunction {
  const kids = new Set(jwks.flatMap(k => k.kid === undefined ? [] : [k.kid]))
  const keyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid !== undefined) })
  const unkeyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid === undefined) })
  return (header = {}, token) => header.kid === undefined || (anyKid && !kids.has(header.kid)) ? unkeyed({ alg: header.alg }) : keyed(header, token)
}
