import type { UpstreamConfig } from '../../config/schema.ts'
import type { BalancedRequest } from './balancer.ts'

/** Reads the consistent-hash key of a request; undefined when the request does not carry it, or an empty one. */
export type KeyReader = (req: BalancedRequest) => string | undefined

export function keyReader (hashOn: NonNullable<UpstreamConfig['hashOn']>): KeyReader {
  if ('header' in hashOn) {
    const name = hashOn.header.toLowerCase()
    return req => nonBlank(first(req.headers[name]))
  }
  if ('cookie' in hashOn) {
    const name = hashOn.cookie
    return req => nonBlank(cookieValue(first(req.headers.cookie), name))
  }
  // An unknown peer address (a socket already gone) is '' (see applyForwarded).
  if ('clientIp' in hashOn) return req => nonBlank(req.clientIp)
  return req => req.path
}

/**
 * An empty or blank value (`X-Key:`, `session=`) is no key, as nginx's hash: hashed, every such
 * request would go to the same target; keyless, they are spread round-robin.
 */
function nonBlank (v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v
}

/** A header's first value; not a string (a JS plugin may have set a header to 42 or null), none. */
function first (v: string | string[] | undefined): string | undefined {
  const one: unknown = Array.isArray(v) ? v[0] : v
  return typeof one === 'string' ? one : undefined
}

/** The value of cookie `name` in a Cookie header ("a=1; b=2"), without splitting the whole header. */
export function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  let at = 0
  while (at < header.length) {
    while (header.charCodeAt(at) === 32) at++
    const end = header.indexOf(';', at)
    const stop = end === -1 ? header.length : end
    if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === 61) return header.slice(at + name.length + 1, stop)
    at = stop + 1
  }
  return undefined
}
