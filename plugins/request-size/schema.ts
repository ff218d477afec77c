import { Type, type Static } from '@sinclair/typebox'
import { ByteSize } from '../../src/index.ts'

export const DEFAULTS = { maxBody: '1MiB', maxUrl: 8192, maxHeaders: 100, maxHeaderBytes: '16KiB' }

export const RequestSizeSchema = Type.Object({
  maxBody: Type.Optional(ByteSize({
    default: DEFAULTS.maxBody,
    description: 'Largest request body. A larger Content-Length is refused (413) before the body is read; a chunked or decoded body is cut at the limit, the upstream request aborted.'
  })),
  maxUrl: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULTS.maxUrl, description: 'Longest request target (path and query), in bytes; longer is refused with 414.' })),
  maxHeaders: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULTS.maxHeaders, description: 'Most header fields in a request; more is refused with 431.' })),
  maxHeaderBytes: Type.Optional(ByteSize({ default: DEFAULTS.maxHeaderBytes, description: 'Largest total of header names and values; larger is refused with 431.' }))
}, { additionalProperties: false })

export type RequestSizeConfig = Static<typeof RequestSizeSchema>
