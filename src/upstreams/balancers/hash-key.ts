import type { UpstreamConfig } from '../../config/schema.ts'
import type { BalancedRequest } from './balancer.ts'

/** Reads the consistent-hash key of a request; undefined when the request does not carry it. */
export type KeyReader = (req: BalancedRequest) => string | undefined

export function keyReader (hashOn: NonNullable<UpstreamConfig['hashOn']>): KeyReader {
  if ('header' in hashOn) {
    const name = hashOn.header.toLowerCase()
    return req => first(req.headers[name])
  }
  if ('cookie' in hashOn) {
    const name = hashOn.cookie
    return req => cookieValue(first(req.headers.cookie), name)
  }
  if ('clientIp' in hashOn) return req => req.clientIp
  return req => req.path
}

function first (v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
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
