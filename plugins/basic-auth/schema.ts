import type { Static } from '@sinclair/typebox'
import { Type } from '../../src/index.ts'
import { commonAuthOptions } from '../shared/auth/schema.ts'
import { PHC_PATTERN } from './password-hash.ts'

export const BasicAuthSchema = Type.Object({
  hideCredentials: Type.Optional(Type.Boolean({ default: false, description: 'Remove the Authorization header before forwarding. Default false.' })),
  ...commonAuthOptions
}, { additionalProperties: false })

/** consumers[].credentials.basic-auth */
export const BasicCredentialSchema = Type.Object({
  username: Type.String({ minLength: 1, pattern: '^[^:]+$', errorMessage: 'must be non-empty, without ":"', description: 'The user name (unique across consumers).' }),
  password: Type.String({
    pattern: PHC_PATTERN,
    errorMessage: 'must be a scrypt hash ($scrypt$ln=..,r=..,p=..$salt$hash): make one with `portcullis hash-password`',
    description: 'The password\'s scrypt hash, as `portcullis hash-password` prints it. Never the password itself.'
  })
}, { additionalProperties: false })

export type BasicCredential = Static<typeof BasicCredentialSchema>
