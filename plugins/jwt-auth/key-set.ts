import { createLocalJWKSet, type CryptoKey, type FlattenedJWSInput, type JWK, type JWSHeaderParameters } from 'jose'

/** jose's key function of a local set: the key for a token's header (and unprotected header). */
export type KeyFunction = (header?: JWSHeaderParameters, token?: FlattenedJWSInput) => Promise<CryptoKey>

/** A token without kid against a set whose keys all have one: its own reason (missing_kid), so that the operator sees the issuer puts no kid in its tokens. */
export class MissingKid extends Error {
  readonly code = 'ERR_JWT_MISSING_KID'
  constructor () { super('the token names no kid, and every key of the set has one') }
}

/**
 * A key set's key function. A token naming a kid gets the key with that kid; a token without kid
 * only the keys without one, tried in turn (token-verifier.ts, MAX_KEY_TRIES at most): a set whose
 * keys all have a kid (every major provider's) refuses it (MissingKid, `onMissingKid` called)
 * without any signature check. `anyKid`: keys without kid verify a token naming a kid no key has
 * too, as PEM keys, which cannot have one, do in a static set.
 */
export function keySet (jwks: readonly JWK[], anyKid: boolean, onMissingKid: () => void = () => {}): KeyFunction {
  const kids = new Set(jwks.flatMap(k => k.kid === undefined ? [] : [k.kid]))
  const withoutKid = jwks.filter(k => k.kid === undefined)
  const keyed = createLocalJWKSet({ keys: jwks.filter(k => k.kid !== undefined) })
  const unkeyed = createLocalJWKSet({ keys: withoutKid })
  return async (header = {}, token) => {
    if (header.kid === undefined && withoutKid.length === 0) {
      onMissingKid()
      throw new MissingKid()
    }
    return header.kid === undefined || (anyKid && !kids.has(header.kid)) ? await unkeyed({ alg: header.alg }) : await keyed(header, token)
  }
}
