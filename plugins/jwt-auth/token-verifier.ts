import { createSecretKey, type KeyObject } from 'node:crypto'
import { jwtVerify, type CryptoKey, type JWTVerifyGetKey, type JWTVerifyOptions, type JWTPayload } from 'jose'
import { MAX_KEY_TRIES } from './public-keys.ts'
import { HMAC } from './schema.ts'

export interface KeySource {
  readonly key: JWTVerifyGetKey
  /** Changes when a key is removed: cached verifications from before no longer count. */
  readonly generation: number
}

/** Throws (or rejects) when the secret may not verify tokens (a remote set made it public: RemoteKeys.secretCheck); a promise while that is not known yet. */
export type SecretCheck = () => Promise<void> | undefined

const isHmac = (alg: unknown) => (HMAC as readonly unknown[]).includes(alg)

/**
 * Whether each segment is base64url as RFC 7515 writes it: no padding, no other character, the
 * unused bits of the last character zero. jose decodes leniently (atob: `=`, white space, any last
 * bits), so a signature ending `...ga8` also verified as `...ga9` or `...ga-`: spellings of one
 * token that a limit by its header would count apart.
 */
const canonical = (token: string): boolean =>
  token.split('.').every(segment => Buffer.from(segment, 'base64url').toString('base64url') === segment)

/**
 * Signature and standard claims (iss, aud, exp, nbf) through jose, and iat not in the future
 * (jose checks it only against a maximum age). HMAC algorithms only ever get
 * the configured secret (once `secretCheck` passes) and the others only the key set, so a public
 * key can never serve as an HMAC secret; keys named by the token (jku, x5u, jwk) are never looked at.
 */
export function tokenVerifier (keys: KeySource | undefined, secret: string | undefined, options: JWTVerifyOptions, secretCheck?: SecretCheck) {
  const secretKey: KeyObject | undefined = secret === undefined ? undefined : createSecretKey(Buffer.from(secret, 'utf8'))
  const getKey: JWTVerifyGetKey = (header, token) => {
    if (isHmac(header.alg)) {
      if (secretKey === undefined) throw Object.assign(new Error('no secret'), { code: 'ERR_JOSE_ALG_NOT_ALLOWED' })
      const checking = secretCheck?.()
      return checking === undefined ? secretKey : checking.then(() => secretKey)
    }
    if (keys === undefined) throw Object.assign(new Error('no key set'), { code: 'ERR_JOSE_ALG_NOT_ALLOWED' })
    return keys.key(header, token)
  }

  const toleranceS = typeof options.clockTolerance === 'number' ? options.clockTolerance : 0
  const issuedBefore = (payload: JWTPayload): JWTPayload => {
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + toleranceS) {
      throw Object.assign(new Error('"iat" claim timestamp is in the future'), { code: 'ERR_JWT_CLAIM_VALIDATION_FAILED', claim: 'iat', reason: 'future' })
    }
    return payload
  }

  /** The token's claims; throws jose's errors (failureOf says what they mean). */
  return async (token: string): Promise<JWTPayload> => {
    if (!canonical(token)) throw Object.assign(new Error('a segment is not canonical base64url'), { code: 'ERR_JWS_INVALID' })
    return issuedBefore(await verify(token))
  }

  async function verify (token: string): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, getKey, options)).payload
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw err
      // Several keys fit a token their kid does not pick (keys without kid, key-set.ts): try each,
      // MAX_KEY_TRIES at most (jose hands them over as an iterator, imported as they come).
      // The first whose signature fits decides: its error (expired, wrong audience...) is the answer.
      let tries = 0
      let last: unknown = err
      for await (const key of err as AsyncIterable<CryptoKey>) {
        if (tries++ === MAX_KEY_TRIES) throw Object.assign(new Error(`more keys fit the token than the ${MAX_KEY_TRIES} tried`), { code: 'ERR_TOO_MANY_KEYS' })
        try {
          return (await jwtVerify(token, key, options)).payload
        } catch (e) {
          if ((e as { code?: string }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') throw e
          last = e
        }
      }
      throw last
    }
  }
}
