import type { AuthFailure } from './failure.ts'

// Beyond printable ASCII (and tab): Node refuses a header value past Latin-1 (the request then
// fails with a 500), and no client reads Latin-1 bytes as the text they stood for anyway.
const NOT_PRINTABLE = /[^\t\x20-\x7e]/gu

/**
 * A quoted-string (RFC 9110 5.6.4): backslash-escapes quotes and backslashes; a character beyond
 * printable ASCII becomes `?`.
 */
export const quoted = (s: string): string => `"${s.replace(NOT_PRINTABLE, '?').replace(/["\\]/g, '\\$&')}"`

// RFC 6750 3: error_description and scope hold %x20-21 / %x23-5B / %x5D-7E alone (no `"` or `\`).
const NOT_RFC6750 = /[^\x20\x21\x23-\x5b\x5d-\x7e]/gu

/** An error_description or scope of a Bearer challenge: what RFC 6750 forbids becomes `?` (the body has the text whole). */
const restricted = (s: string): string => `"${s.replace(NOT_RFC6750, '?')}"`

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
    return `${bare}, error="${error}", error_description=${restricted(failure.description)}` +
      (failure.scope === undefined ? '' : `, scope=${restricted(failure.scope)}`)
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
