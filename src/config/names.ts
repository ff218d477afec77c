import { Type } from '@sinclair/typebox'

/** An RFC 9110 token: a header name, a method, an Upgrade protocol name. */
export const TOKEN = '^[!#$%&\'*+.^_`|~0-9A-Za-z-]+$'

/**
 * The key schema of a Type.Record whose names must not be empty. TypeBox keeps only a key
 * schema's pattern (minLength is dropped); the Record also needs `additionalProperties: false`,
 * or a key the pattern refuses is simply not checked.
 */
export const NonEmptyKey = Type.String({ pattern: '^.+$' })
