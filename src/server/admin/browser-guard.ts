import { isIPv4, isIPv6 } from 'node:net'
import { Transform, type Readable } from 'node:stream'
import type { FastifyRequest } from 'fastify'

/** Why a request is refused before any endpoint sees it, or undefined. `close`: its connection ends after the answer. */
export interface Refusal { readonly status: number, readonly error: string, readonly message: string, readonly close?: boolean }

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const JSON_TYPE = /^application\/json\s*(?:;|$)/i

const ORIGIN: Refusal = {
  status: 403, error: 'origin_refused',
  message: 'the admin API does not answer web pages: a request with an Origin header is refused (use curl, a scraper or a probe)'
}
const FETCH_SITE: Refusal = {
  status: 403, error: 'origin_refused',
  message: 'without admin.token, the admin API does not answer web pages: a request whose Sec-Fetch-Site is other than none or same-origin is refused, but for a GET or HEAD navigation (open the link; or use curl, a scraper or a probe)'
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

/** A GET or HEAD the browser makes as a navigation (a link followed, a URL opened): not an img's, a script's or a fetch's (no-cors, cors). */
const navigation = (req: FastifyRequest): boolean =>
  (req.method === 'GET' || req.method === 'HEAD') && req.headers['sec-fetch-mode']?.toLowerCase() === 'navigate'

/** A POST, PUT, PATCH or DELETE whose body, if any, is not said to be JSON: a form's, a "simple" fetch's. */
const unsafeNotJson = (req: FastifyRequest): boolean => UNSAFE.has(req.method) && !JSON_TYPE.test(req.headers['content-type'] ?? '')

/**
 * The admin API's clients are curl, Prometheus and probes, never browsers. Browsers send Origin
 * with every cross-origin fetch and every POST, so any Origin is refused (a top-level GET typed in
 * the address bar has none and still works). Without a token, a page on a DNS name rebound to the
 * loopback would be same-origin: the Host must then be an address; and what the browser marks as
 * another site's (Sec-Fetch-Site) is refused too, should an Origin ever be left out, but for a GET
 * or HEAD navigation (a dashboard's link): the linking page cannot read what it opens, and GET
 * changes nothing. A body must be JSON, which a form or a "simple" fetch cannot send without a preflight.
 */
export function browserRefusal (req: FastifyRequest, tokenSet: boolean): Refusal | undefined {
  if (req.headers.origin !== undefined) return ORIGIN
  if (!tokenSet) {
    const site = req.headers['sec-fetch-site']?.toLowerCase()
    if (site !== undefined && site !== 'none' && site !== 'same-origin' && !navigation(req)) return FETCH_SITE
    const host = req.headers.host
    if (host !== undefined && !addressHost(host)) return HOST
  }
  // A chunked one (never a browser's: a streamed body needs a preflight) is judged by its first byte (firstByteJudged).
  if (unsafeNotJson(req) && declaredLength(req) > 0) return MEDIA_TYPE
  return undefined
}

/**
 * `payload`, a chunked body of a request browserRefusal could not judge by its head, as the body
 * parser reads it: failing 415 at its first byte, before the rest is read (`refused` told first);
 * an empty one is none.
 */
export function firstByteJudged (req: FastifyRequest, payload: Readable, refused: (r: Refusal) => void): Readable {
  if (!unsafeNotJson(req) || req.headers['transfer-encoding'] === undefined) return payload
  const judged = new Transform({
    transform (chunk: Buffer, _enc, done) {
      if (chunk.length === 0) return done()
      refused(MEDIA_TYPE)
      done(Object.assign(new Error(MEDIA_TYPE.message), { statusCode: MEDIA_TYPE.status }))
    }
  })
  payload.once('error', err => judged.destroy(err))
  return payload.pipe(judged)
}

/** The body length a Content-Length says (`00` is 0), 0 without one. */
const declaredLength = (req: FastifyRequest): number => Number(req.headers['content-length'] ?? 0)

/** Whether the request says it has a body (Transfer-Encoding, or a Content-Length other than 0). */
export const hasBody = (req: FastifyRequest): boolean => req.headers['transfer-encoding'] !== undefined || declaredLength(req) > 0
