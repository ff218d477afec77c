import type { Static } from '@sinclair/typebox'
import { StoreName, Type } from '../../src/index.ts'
import { commonAuthOptions } from '../shared/auth/schema.ts'
import { N_FITS_PATTERN, PHC_PATTERN } from './password-hash.ts'

/** What `failures` is when not given: on, 20 failed password checks a minute per client address, counted in memory. */
export const FAILURE_DEFAULTS = { limit: 20, window: '1m', store: 'memory' } as const

// Retry-After is whole seconds, so windows are whole seconds, minutes, hours or days (as rate-limit's).
const Window = Type.Union([
  Type.Integer({ minimum: 1000, multipleOf: 1000 }),
  Type.String({ pattern: '^[1-9]\\d*(s|m|h|d)$' })
], { errorMessage: 'must be a whole number of seconds, minutes, hours or days, e.g. 30s, 1m, 1h (or milliseconds, a multiple of 1000)' })

// No `default` inside: Ajv ignores (and refuses, in strict mode) defaults under a union's branch.
export const FailuresSchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, description: 'Failed password checks a client address may have per window; past them, 429 without a check. Default 20.' })),
  window: Type.Optional(Type.Union([Window], { description: 'Counted from an address\'s first failure; its 429s last until the window ends. Default 1m.' })),
  store: Type.Optional(StoreName({ description: 'Where the counts live: memory (per process) or a Redis store under stores: (shared by instances). Default memory.' }))
}, { additionalProperties: false })

export const BasicAuthSchema = Type.Object({
  hideCredentials: Type.Optional(Type.Boolean({ default: false, description: 'Remove the Authorization header before forwarding. Default false.' })),
  failures: Type.Optional(Type.Union([Type.Literal(false), FailuresSchema], {
    errorMessage: 'must be false or { limit, window, store }',
    description: 'Limit on failed password checks per client address (after trustProxy). Default on: 20 per 1m in memory; false turns it off.'
  })),
  ...commonAuthOptions
}, { additionalProperties: false })

/** consumers[].credentials.basic-auth */
export const BasicCredentialSchema = Type.Object({
  username: Type.String({ minLength: 1, pattern: '^[^:]+$', errorMessage: 'must be non-empty, without ":"', description: 'The user name (unique across consumers).' }),
  password: Type.String({
    // Two rules, a message each: a well-formed hash whose N scrypt refuses for its r is told why.
    allOf: [
      { pattern: PHC_PATTERN, errorMessage: 'must be a scrypt hash ($scrypt$ln=..,r=..,p=..$salt$hash): make one with `portcullis hash-password`' },
      { pattern: N_FITS_PATTERN, errorMessage: 'has ln 16 or more with r=1: scrypt needs N = 2^ln below 2^(16·r), so no password could be checked; make the hash with `portcullis hash-password` (r=8)' }
    ],
    description: 'The password\'s scrypt hash, as `portcullis hash-password` prints it. Never the password itself.'
  })
}, { additionalProperties: false })

export type BasicCredential = Static<typeof BasicCredentialSchema>
export type FailuresConfig = Static<typeof FailuresSchema>
