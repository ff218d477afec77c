import type { Static } from '@sinclair/typebox'
import { StoreName, TOKEN, Type } from '../../src/index.ts'
import { commonAuthOptions } from '../shared/auth/schema.ts'

/** The header holding the key by default. */
export const KEY_HEADER = 'x-api-key'

export const KeyAuthSchema = Type.Object({
  header: Type.Optional(Type.String({ pattern: TOKEN, default: KEY_HEADER, description: 'Header holding the key. Default x-api-key.' })),
  query: Type.Optional(Type.String({ minLength: 1, description: 'Query parameter holding the key, read when the header is absent. Default: none (header only).' })),
  hideCredentials: Type.Optional(Type.Boolean({ default: false, description: 'Remove the key (header and query parameter) before forwarding. Default false.' })),
  store: Type.Optional(StoreName({
    description: 'A store (Redis) holding more keys, for key sets too large for the config: key-auth:<sha256 hex of the key> -> consumer id. ' +
      'Looked up when a key is not in the config. Default: none.'
  })),
  ...commonAuthOptions
}, { additionalProperties: false })

/**
 * A key as consumers hold it: its SHA-256 (sha256:<64 hex>), or the key itself, best from ${ENV}.
 * Not with white space at either end: Node trims it from header values. Nor with a character
 * beyond printable ASCII: Node reads a header value's bytes as Latin-1 (a UTF-8 key arrives as
 * other characters) and refuses control characters (a tab, allowed, is left out for a plain
 * rule). Such keys would only ever match in a query parameter. Each rule lets what another
 * reports pass, so that a key gets only the message that fits.
 */
const StoredKey = Type.String({
  allOf: [
    { pattern: '^\\s*(sha256:[0-9a-f]{64}|(?!sha256:).{16,})\\s*$', errorMessage: 'must be sha256:<64 lower-case hex digits> or a key of at least 16 characters (write it as ${ENV})' },
    { pattern: '^\\S(?:[\\s\\S]*\\S)?$', errorMessage: 'has white space at its start or end (a trailing newline from a secret file?): remove it; a key sent in a header never has any, so this one would never match there' },
    { pattern: '^\\s*[\\x20-\\x7e]*\\s*$', errorMessage: 'has a character beyond printable ASCII (a letter such as é, a control character): a key sent in a header is read byte by byte as Latin-1, so this one would never match there; use printable ASCII (space to ~)' }
  ]
})

/** consumers[].credentials.key-auth */
export const KeyCredentialSchema = Type.Object({
  keys: Type.Array(StoredKey, { minItems: 1, description: 'This consumer\'s API keys.' })
}, { additionalProperties: false })

export type KeyCredential = Static<typeof KeyCredentialSchema>
