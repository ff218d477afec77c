import type { HeaderMap } from '../../src/index.ts'

type Headers = Readonly<Record<string, string | string[] | undefined>>

const weak = (tag: string): string => tag.trim().replace(/^W\//, '')

/** Whether a client's conditional GET/HEAD is answered with 304 by a response with these headers (RFC 9110 13.1.2, 13.1.3). */
export function notModified (request: Headers, stored: Headers): boolean {
  const inm = request['if-none-match']
  if (inm !== undefined) {
    const etag = stored.etag
    const list = String(inm)
    if (list.trim() === '*') return true
    return etag !== undefined && list.split(',').some(t => weak(t) === weak(String(etag)))
  }
  const ims = request['if-modified-since']
  if (ims === undefined) return false
  const since = Date.parse(String(ims))
  const modified = Date.parse(String(stored['last-modified'] ?? stored.date ?? ''))
  return !Number.isNaN(since) && !Number.isNaN(modified) && modified <= since
}

// The client's conditionals, and its Range: a revalidation asks for the whole stored response
// again, so that a 200 can replace it (a 206 could not, and would drop it).
const CLIENT_ONLY = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range'] as const

/** Whether the cache replaces this request field on a revalidation (see setValidators). */
export const rewrittenByCache = (name: string): boolean => (CLIENT_ONLY as readonly string[]).includes(name)

/** Whether the request has a field that can make the upstream answer with less than the whole response (206, 304, 412). */
export const asksForLess = (h: Headers): boolean => CLIENT_ONLY.some(name => h[name] !== undefined)

/** Replaces the client's conditionals (and Range) with the stored response's validators (RFC 9111 4.3.1). */
export function setValidators (headers: HeaderMap, stored: Headers): void {
  for (const h of CLIENT_ONLY) delete headers[h]
  if (stored.etag !== undefined) headers['if-none-match'] = stored.etag
  if (stored['last-modified'] !== undefined) headers['if-modified-since'] = stored['last-modified']
}

/**
 * Whether a 304 is about the stored response (RFC 9111 4.3.4): its ETag, else its Last-Modified,
 * is the stored one's. A 304 naming another representation must update nothing. ETags are
 * compared weakly, as the If-None-Match the 304 answers was.
 */
export function describesStored (notModified: Headers, stored: Headers): boolean {
  const etag = notModified.etag
  if (etag !== undefined) return stored.etag !== undefined && weak(String(etag)) === weak(String(stored.etag))
  const lm = notModified['last-modified']
  return lm === undefined || Date.parse(String(lm)) === Date.parse(String(stored['last-modified']))
}

// Describe the stored body, which a 304 does not replace (RFC 9111 3.2); the rest are ours or per-response.
const KEEP_ON_UPDATE = new Set(['content-length', 'content-encoding', 'content-type', 'content-range', 'transfer-encoding', 'x-request-id', 'set-cookie', 'cache-status', 'age'])

/** The stored headers updated with those of a 304 (RFC 9111 3.2, 4.3.4). */
export function updatedHeaders (stored: Record<string, string | string[]>, fresh: HeaderMap): Record<string, string | string[]> {
  const out = { ...stored }
  for (const name in fresh) {
    const v = fresh[name]
    if (v !== undefined && !KEEP_ON_UPDATE.has(name)) out[name] = v
  }
  return out
}

// What a 304 to the client carries (RFC 9110 15.4.5).
const NOT_MODIFIED_FIELDS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified'] as const

export function notModifiedHeaders (stored: Headers): HeaderMap {
  const out: HeaderMap = {}
  for (const name of NOT_MODIFIED_FIELDS) if (stored[name] !== undefined) out[name] = stored[name]
  return out
}
