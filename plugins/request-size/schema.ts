import { Type, type Static } from '@sinclair/typebox'
import { ByteSize } from '../../src/index.ts'

export const DEFAULTS = { maxBody: '1MiB', maxUrl: 8192, maxHeaders: 100, maxHeaderBytes: '16KiB' }

// No schema `default` (validation would fill it in): a key the route leaves out stays undefined, so
// the replacing warning tells it from the same value written (setup applies DEFAULTS).
export const RequestSizeSchema = Type.Object({
  maxBody: Type.Optional(ByteSize({
    description: 'Largest request body. A larger Content-Length is refused (413) before the body is read; a chunked or decoded body is cut at the limit, the upstream request aborted. Default 1MiB.'
  })),
  maxUrl: Type.Optional(Type.Integer({ minimum: 1, description: 'Longest request target (path and query), in bytes; longer is refused with 414. Default 8192.' })),
  maxHeaders: Type.Optional(Type.Integer({ minimum: 1, description: 'Most header fields in a request; more is refused with 431. Default 100.' })),
  maxHeaderBytes: Type.Optional(ByteSize({ description: 'Largest total of header names and values; larger is refused with 431. Default 16KiB.' }))
}, { additionalProperties: false })

export type RequestSizeConfig = Static<typeof RequestSizeSchema>
