import type { AuthFailure } from './failure.ts'

/** A quoted-string (RFC 9110 5.6.4): backslash-escapes quotes and backslashes. */
export const quoted = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`

/** Builds a WWW-Authenticate challenge for a failure (or for a missing credential: no failure). */
export type Challenge = (failure: AuthFailure | undefined) => string

/**
 * RFC 6750 section 3: no error code when no token was sent; invalid_token or insufficient_scope
 * (with the scopes needed) when one was.
 */
export function bearerChallenge (realm: string): Challenge {
  const bare = `Bearer realm=${quoted(realm)}`
  return failure => {
    if (failure === undefined || failure.reason === 'missing' || failure.status === 503) return bare
    const error = failure.code === 'insufficient_scope' ? 'insufficient_scope' : 'invalid_token'
    return `${bare}, error="${error}", error_description=${quoted(failure.description)}` +
      (failure.scope === undefined ? '' : `, scope=${quoted(failure.scope)}`)
  }
}

/** RFC 7617. */
export function basicChallenge (realm: string): Challenge {
  const value = `Basic realm=${quoted(realm)}, charset="UTF-8"`
  return () => value
}

/** API keys have no registered scheme: "Key", as Kong and others answer. */
export function keyChallenge (realm: string): Challenge {
  const value = `Key realm=${quoted(realm)}`
  return () => value
}
