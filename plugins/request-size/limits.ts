import type { IncomingMessage } from 'node:http'
import { Transform, type TransformCallback } from 'node:stream'
import { RequestRejected } from '../../src/index.ts'
import { refusal } from '../shared/refusal.ts'

/** Passes a body through until it exceeds `max` bytes, then refuses the request (413). */
export class BodyLimit extends Transform {
  readonly #max: number
  readonly #requestId: string
  readonly #onRefused: () => void
  #seen = 0

  constructor (max: number, requestId: string, onRefused: () => void) {
    super()
    this.#max = max
    this.#requestId = requestId
    this.#onRefused = onRefused
  }

  override _transform (chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen <= this.#max) { cb(null, chunk); return }
    this.#onRefused()
    cb(new RequestRejected('request body too large', refusal(413, 'body_too_large', `the request body is larger than ${this.#max} bytes`, this.#requestId, true)))
  }
}

/** Sum of the lengths of header names and values as received. */
function headerBytes (raw: readonly string[]): number {
  let n = 0
  for (const s of raw) n += s.length
  return n
}

const COOKIE = 'cookie'
const AUTHORITY = ':authority'

/**
 * Whether an HTTP/2 request's header fields (rawHeaders) are more than `maxFields`, or more than
 * `maxBytes` bytes of names and values, counted as the same request over HTTP/1.1 would be:
 * pseudo-headers left out but `:authority`, which counts as Host when there is none; the cookie
 * crumbs HTTP/2 may split a Cookie into (RFC 9113 8.2.3) as one field joined with "; ".
 */
function h2HeadersOver (raw: readonly string[], maxFields: number, maxBytes: number): boolean {
  let fields = 0
  let bytes = 0
  let cookies = 0
  let authority = -1
  let host = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = (raw[i + 1] as string).length
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === AUTHORITY) authority = value
      continue
    }
    if (name === COOKIE && cookies++ > 0) { bytes += 2 + value; continue }
    if (name === 'host') host = true
    fields++
    bytes += name.length + value
  }
  if (authority >= 0 && !host) { fields++; bytes += 4 + authority }
  return fields > maxFields || bytes > maxBytes
}

/**
 * Whether a request's header fields are more than `maxFields`, or more than `maxBytes` bytes of
 * names and values, counted as the same request over HTTP/1.1 in origin-form would be.
 */
export function headersOver (req: IncomingMessage, maxFields: number, maxBytes: number): boolean {
  const raw = req.rawHeaders
  if (req.httpVersionMajor === 2) return h2HeadersOver(raw, maxFields, maxBytes)
  const url = req.url as string
  if (url.charCodeAt(0) !== 47 /* / */) return absoluteHeadersOver(raw, url, maxFields, maxBytes)
  return raw.length / 2 > maxFields || headerBytes(raw) > maxBytes
}

/**
 * As headersOver, for an absolute-form target (`GET http://host/path`): its authority is the Host
 * field (the gateway ignores the one sent and forwards the authority, RFC 9112 3.2.2), so it counts
 * as one, in place of any Host sent.
 */
function absoluteHeadersOver (raw: readonly string[], url: string, maxFields: number, maxBytes: number): boolean {
  const slashes = url.indexOf('//')
  let fields = 1
  let bytes = slashes === -1 ? 4 : 4 + authorityEnd(url, slashes + 2) - slashes - 2
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 4 && name.toLowerCase() === 'host') continue
    fields++
    bytes += name.length + (raw[i + 1] as string).length
  }
  return fields > maxFields || bytes > maxBytes
}

/**
 * The length of the request target's path and query: raw.url, less the scheme and host of an
 * absolute-form target (`GET http://host/path HTTP/1.1`), whose path is `/` when empty.
 */
export function targetLength (url: string): number {
  if (url.charCodeAt(0) === 47 /* / */) return url.length
  const slashes = url.indexOf('//')
  if (slashes === -1) return url.length
  const end = authorityEnd(url, slashes + 2)
  if (end === url.length) return 1
  return url.charCodeAt(end) === 47 ? url.length - end : url.length - end + 1
}

/** Where an absolute-form target's authority, from `start` (past `//`), ends: at its path or query, or the end. */
function authorityEnd (url: string, start: number): number {
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c === 47 /* / */ || c === 63 /* ? */) return i
  }
  return url.length
}
