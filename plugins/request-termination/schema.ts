import { Type, type Static } from '@sinclair/typebox'
import { ByHeaderName, HeaderValue } from '../shared/header-edits.ts'

export const DEFAULTS = { status: 503 }

export const RequestTerminationSchema = Type.Object({
  status: Type.Optional(Type.Integer({ minimum: 200, maximum: 599, default: DEFAULTS.status, description: 'The status answered.' })),
  // The names header edits refuse: hop-by-hop headers and Content-Length, which the gateway writes for the body.
  headers: Type.Optional(ByHeaderName(HeaderValue, 'Response headers (Retry-After, Sunset, Link...). Default: none.')),
  body: Type.Optional(Type.Unknown({ description: 'The body: a string is sent as text/plain unless headers set a Content-Type; anything else as JSON. Default: none.' }))
}, { additionalProperties: false })

export type RequestTerminationConfig = Static<typeof RequestTerminationSchema>
