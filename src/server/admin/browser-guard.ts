import { isIPv4, isIPv6 } from 'node:net'
import type { FastifyRequest } from 'fastify'

/** Why a request is refused as one a web page may have made, or undefined. */
export interface Refusal { readonly status: number, readonly error: string, readonly message: string }

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

const ORIGIN: Refusal = {
  status: 403, error: 'origin_refused',
  message: 'the admin API does not answer web pages: a request with an Origin header is refused (use curl, a scraper or a probe)'
}
const HOST: Refusal = {
  status: 403, error: 'host_refused',
  message: 'without admin.token, the admin API answers only Host values that are an IP address or localhost (a DNS name may have been rebound by a web page)'
}
const MEDIA_TYPE: Refusal = { status: 415, error: 'unsupported_media_type', message: 'a request body must be application/json' }

/** `localhost`, an IPv4 address or a bracketed IPv6 address, each with an optional port. */
function addressHost (host: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d{1,5})?$/.exec(host)
  if (m === null) return false
  return m[1] !== undefined ? isIPv6(m[1]) : m[2]?.toLowerCase() === 'localhost' || isIPv4(m[2] as string)
}

/**
 * The admin API's clients are curl, Prometheus and probes, never browsers. Browsers send Origin
 * with every cross-origin fetch and every POST, so any Origin is refused (a top-level GET typed in
 * the address bar has none and still works). Without a token, a page on a DNS name rebound to the
 * loopback would be same-origin: the Host must then be an address. A body must be JSON, which a
 * form or a "simple" fetch cannot send without a preflight.
 */
export function browserRefusal (req: FastifyRequest, tokenSet: boolean): Refusal | undefined {
  if (req.headers.origin !== undefined) return ORIGIN
  const host = req.headers.host
  if (!tokenSet && host !== undefined && !addressHost(host)) return HOST
  if (UNSAFE.has(req.method) && hasBody(req) && !/^application\/json\s*(?:;|$)/i.test(req.headers['content-type'] ?? '')) return MEDIA_TYPE
  return undefined
}

/** Whether the request says it has a body (Transfer-Encoding, or a Content-Length other than 0). */
export const hasBody = (req: FastifyRequest): boolean =>
  req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')
