import { fail, type AuthFailure } from '../shared/auth/failure.ts'

const invalid = (reason: string, description: string) => fail(401, reason, 'invalid_token', description)

export const TOO_LARGE = invalid('too_large', 'the token is too large')
export const NO_CONSUMER = (claim: string) => invalid('no_consumer', `the token has no ${claim} claim`)
export const UNKNOWN_CONSUMER = invalid('unknown_consumer', 'the token names no known consumer')
export const CLAIM_MISMATCH = (claim: string) => invalid('claim_mismatch', `the token's ${claim} claim is not accepted`)
export const insufficientScope = (scope: string) => fail(403, 'insufficient_scope', 'insufficient_scope', 'the token lacks a required scope', scope)

const EXPIRED = invalid('expired', 'the token has expired')
const NOT_YET_VALID = invalid('not_yet_valid', 'the token is not valid yet')
const WRONG_ISSUER = invalid('wrong_issuer', 'the token is from another issuer')
const WRONG_AUDIENCE = invalid('wrong_audience', 'the token is for another audience')
const MISSING_EXP = invalid('missing_exp', 'the token has no expiry (exp)')
const ALG_NOT_ALLOWED = invalid('alg_not_allowed', 'the token\'s algorithm is not allowed')
const BAD_SIGNATURE = invalid('bad_signature', 'the token\'s signature is invalid')
// An HMAC token whose route's secret a fetched key set made public (remote-keys.ts secretCheck): answered as a bad signature, counted apart.
const PUBLIC_SECRET = invalid('public_secret', BAD_SIGNATURE.description)
const UNKNOWN_KEY = invalid('unknown_key', 'the token is signed with an unknown key')
const MISSING_KID = invalid('missing_kid', 'the token names no kid, and every key of the set has one')
const TOO_MANY_KEYS = invalid('too_many_keys', 'more keys fit the token than are tried, and none of those tried verifies it')
const UNSUPPORTED = invalid('unsupported', 'the token uses an unsupported header or critical extension')
const MALFORMED = invalid('malformed', 'the token is malformed')
const KEYS_UNAVAILABLE = fail(503, 'keys_unavailable', 'auth_unavailable', 'the identity provider\'s keys could not be fetched; try again later')

/** What a jose (or key set) error means for the client; descriptions never quote the token. */
export function failureOf (err: unknown): AuthFailure {
  const { code, claim, reason, retryAfter } = err as { code?: string, claim?: string, reason?: string, retryAfter?: number }
  switch (code) {
    case 'ERR_JWT_EXPIRED': return EXPIRED
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      // An exp, nbf or iat that is no number (jose's "invalid"): a malformed token, not one valid later, or expired.
      if (reason === 'invalid') return MALFORMED
      if ((claim === 'nbf' && reason === 'check_failed') || (claim === 'iat' && reason === 'future')) return NOT_YET_VALID
      if (claim === 'iss') return WRONG_ISSUER
      if (claim === 'aud') return WRONG_AUDIENCE
      if (claim === 'exp' && reason === 'missing') return MISSING_EXP
      return CLAIM_MISMATCH(claim ?? 'unknown')
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return ALG_NOT_ALLOWED
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return BAD_SIGNATURE
    case 'ERR_PUBLIC_SECRET': return PUBLIC_SECRET
    case 'ERR_JWKS_NO_MATCHING_KEY': return UNKNOWN_KEY
    case 'ERR_JWT_MISSING_KID': return MISSING_KID
    case 'ERR_TOO_MANY_KEYS': return TOO_MANY_KEYS
    case 'ERR_JOSE_NOT_SUPPORTED': return UNSUPPORTED
    // Retry-After: when the next fetch may run (remote-keys.ts).
    case 'ERR_KEYS_UNAVAILABLE': return retryAfter === undefined ? KEYS_UNAVAILABLE : { ...KEYS_UNAVAILABLE, retryAfter }
    default: return MALFORMED
  }
}
