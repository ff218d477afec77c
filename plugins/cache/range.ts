import { randomBytes } from 'node:crypto'
import { combineRanges, parse } from 'range-parser'
import type { GatewayRequest, HeaderMap } from '../../src/index.ts'
import { firstValue as one } from '../shared/first-value.ts'
import { httpDate } from './conditional.ts'
import type { Entry } from './entry.ts'

/** Parts apart a multipart/byteranges answer holds at most (Apache's MaxRanges defaults to 200). */
const MAX_PARTS = 16
/** Its largest size: as much as an upstream's responseBuffer lets one slow client hold by default. */
const MAX_MULTIPART = 64 * 1024
const CRLF = Buffer.from('\r\n')

/**
 * If-Range (RFC 9110 13.1.5): the range is sent only if the stored response is the one the client
 * holds part of. An entity tag compares strongly; a date must equal Last-Modified, which must be
 * strong (at least a second before Date).
 */
function ifRangeHolds (value: string, stored: Entry['headers']): boolean {
  const etag = one(stored.etag)
  if (value.startsWith('"') || value.startsWith('W/')) return etag !== undefined && !etag.startsWith('W/') && value === etag
  // Not an HTTP-date (nor an entity-tag): the Range is ignored (13.1.5), as NaN equals nothing.
  const modified = httpDate(one(stored['last-modified']))
  return httpDate(value) === modified && modified <= httpDate(one(stored.date)) - 1000
}

/**
 * A GET's Range answered from a stored 200 (RFC 9110 14): 206 with one part, 206
 * multipart/byteranges for parts apart, or 416 when no range fits. Undefined (send the whole
 * response, which RFC 9110 14.2 allows) for anything else: no or a malformed Range, parts apart
 * past MAX_PARTS or MAX_MULTIPART bytes or outweighing the whole, an If-Range that does not hold, an
 * upstream that said `Accept-Ranges: none`, and an encoded body (compress never touches a 206,
 * so a client that does not accept the coding could not be given part of it).
 */
export function rangeReply (req: GatewayRequest, e: Entry, headers: HeaderMap): { status: 206 | 416, headers: HeaderMap, body: Buffer } | undefined {
  const range = req.clientHeaders.range
  if (range === undefined || req.method !== 'GET' || e.status !== 200 || e.body.length === 0) return
  const stored = e.headers
  if (stored['content-encoding'] !== undefined || one(stored['accept-ranges'])?.toLowerCase() === 'none') return
  const ifRange = one(req.clientHeaders['if-range'])
  if (ifRange !== undefined && !ifRangeHolds(ifRange, stored)) return
  const size = e.body.length
  const parsed = parse(size, range)
  // A malformed or invalid range, even beside good ones, voids the header (RFC 9110 14.2).
  if (parsed.type !== 'bytes' || (parsed.code & 1) !== 0) return
  if (parsed.ranges.length === 0) {
    const body = Buffer.from(JSON.stringify({ error: 'range_not_satisfiable', message: `no range in "${range}" is within the ${size} bytes stored`, requestId: req.id }))
    // None of the stored headers: a 416 describes no representation, and must not be kept in its place.
    const refusal = { 'content-range': `bytes */${size}`, 'content-type': 'application/json', 'content-length': String(body.length), 'cache-control': 'no-store', 'cache-status': headers['cache-status'] }
    return { status: 416, headers: refusal, body }
  }
  const parts = combineRanges(parsed.ranges)
  if (parts.length === 1) {
    const { start, end } = parts[0]!
    return {
      status: 206,
      headers: { ...headers, 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': String(end - start + 1) },
      body: e.body.subarray(start, end + 1)
    }
  }
  return parts.length <= MAX_PARTS ? multipart(parts, e.body, headers) : undefined
}

/**
 * Parts apart, in the order asked (overlapping ones merged), as multipart/byteranges (RFC 9110
 * 14.6): each with the stored Content-Type and its Content-Range. Unlike one range (a view of the
 * stored body) or the whole body (shared by every hit), this is a copy per request: at most
 * MAX_MULTIPART bytes, so that clients reading slowly cannot make the gateway hold a stored body
 * per connection. Past it, past MAX_PARTS, or when the parts with their framing would be as large
 * as the whole (14.2 lets a server ignore such a set), the whole 200.
 */
function multipart (parts: ReadonlyArray<{ start: number, end: number }>, body: Buffer, headers: HeaderMap): { status: 206, headers: HeaderMap, body: Buffer } | undefined {
  const boundary = randomBytes(12).toString('hex')
  const type = one(headers['content-type'])
  const partHead = type === undefined ? '' : `Content-Type: ${type}\r\n`
  const heads = parts.map(({ start, end }) => Buffer.from(`--${boundary}\r\n${partHead}Content-Range: bytes ${start}-${end}/${body.length}\r\n\r\n`))
  const close = Buffer.from(`--${boundary}--\r\n`)
  let length = close.length
  parts.forEach(({ start, end }, i) => { length += (heads[i] as Buffer).length + end - start + 1 + CRLF.length })
  if (length >= body.length || length > MAX_MULTIPART) return undefined
  const chunks = parts.flatMap(({ start, end }, i) => [heads[i] as Buffer, body.subarray(start, end + 1), CRLF])
  chunks.push(close)
  const out: HeaderMap = { ...headers, 'content-type': `multipart/byteranges; boundary=${boundary}`, 'content-length': String(length) }
  delete out['content-range']
  return { status: 206, headers: out, body: Buffer.concat(chunks, length) }
}
