import { Type, type Static } from '@sinclair/typebox'
import { TOKEN } from '../../src/index.ts'

export const DEFAULTS = { status: 503 }

export const RequestTerminationSchema = Type.Object({
  status: Type.Optional(Type.Integer({ minimum: 200, maximum: 599, default: DEFAULTS.status, description: 'The status answered.' })),
  headers: Type.Optional(Type.Record(Type.String({ pattern: TOKEN }), Type.String({ pattern: '^[\\t\\x20-\\x7e\\x80-\\xff]*$' }), {
    additionalProperties: false,
    errorMessage: 'must map header names to values',
    description: 'Response headers (Retry-After, Sunset, Link...). Default: none.'
  })),
  body: Type.Optional(Type.Unknown({ description: 'The body: a string is sent as text/plain unless headers set a Content-Type; anything else as JSON. Default: none.' }))
}, { additionalProperties: false })

export type RequestTerminationConfig = Static<typeof RequestTerminationSchema>
