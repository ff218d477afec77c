import type { GatewayRequest, GatewayResponse } from '../../src/index.ts'

const NO_TRANSFORM = /(?:^|,)\s*no-transform\s*(?:,|$)/i

/** A content-type allow list compiled once: exact types, `type/*` and `type/*+suffix`. */
export function typeMatcher (patterns: readonly string[]): (contentType: string) => boolean {
  const exact = new Set<string>()
  const prefixes: string[] = []
  const suffixed: Array<readonly [prefix: string, suffix: string]> = []
  for (const p of patterns) {
    const slash = p.indexOf('/')
    const sub = p.slice(slash + 1)
    if (sub === '*') prefixes.push(p.slice(0, slash + 1))
    else if (sub.startsWith('*+')) suffixed.push([p.slice(0, slash + 1), sub.slice(1)])
    else exact.add(p)
  }
  return contentType => {
    const semi = contentType.indexOf(';')
    const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
    if (exact.has(type)) return true
    for (const p of prefixes) if (type.startsWith(p)) return true
    for (const [p, s] of suffixed) if (type.startsWith(p) && type.endsWith(s)) return true
    return false
  }
}

/** A header's value, its lines joined into one list (RFC 9110 5.3). */
export const joined = (v: string | string[] | undefined): string | undefined => Array.isArray(v) ? v.join(', ') : v

/**
 * Whether the body may be changed at all: never for HEAD, a response without a body or a part of
 * one, a type not worth it, or one the sender said must not be transformed.
 */
export function transformable (res: GatewayResponse, req: GatewayRequest, typeAllowed: (type: string) => boolean): boolean {
  return req.method !== 'HEAD' && res.status !== 304 && changeable(res, typeAllowed, false)
}

/**
 * Whether a response without a body (HEAD, 304) describes one compress would change, so that it
 * gets the headers that body's response would have (RFC 9110 9.3.2, 15.4.5). A 304 often has no
 * Content-Type (the cache's, Express's): taken as one that may be.
 */
export function describesTransformable (res: GatewayResponse, req: GatewayRequest, typeAllowed: (type: string) => boolean): boolean {
  if (res.status === 304) return changeable(res, typeAllowed, true)
  return req.method === 'HEAD' && changeable(res, typeAllowed, false)
}

const BYTERANGES = /^\s*multipart\/byteranges\s*(?:;|$)/i

/**
 * Whether a 206 is part of a body compress would change (or decode) for some client: it gets the
 * Vary its 200 would have (RFC 9110 15.3.7), its bytes untouched. Parts apart (multipart/byteranges)
 * do not tell the body's type: taken as one that may be.
 */
export function partOfTransformable (res: GatewayResponse, typeAllowed: (type: string) => boolean): boolean {
  if (res.status !== 206 || noTransform(res.headers)) return false
  const type = joined(res.headers['content-type'])
  return type !== undefined && (BYTERANGES.test(type) || typeAllowed(type))
}

function noTransform (h: GatewayResponse['headers']): boolean {
  const cc = joined(h['cache-control'])
  return cc !== undefined && NO_TRANSFORM.test(cc)
}

function changeable (res: GatewayResponse, typeAllowed: (type: string) => boolean, untyped: boolean): boolean {
  // 204 and 205 have no content (RFC 9110 15.3.5, 15.3.6); a 206 is part of one.
  if (res.status < 200 || res.status === 204 || res.status === 205 || res.status === 206) return false
  const h = res.headers
  if (h['content-range'] !== undefined) return false
  const type = joined(h['content-type'])
  if (type === undefined ? !untyped : !typeAllowed(type)) return false
  return !noTransform(h)
}
