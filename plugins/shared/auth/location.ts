import { isIdentityHeader, TOKEN, Type, type GatewayRequest, type PluginSetupContext } from '../../../src/index.ts'


/** Where a request carries a credential: a header (optionally after an auth scheme), a cookie, or a query parameter. */
export const LocationSchema = Type.Union([
  Type.Object({
    header: Type.String({ pattern: TOKEN, description: 'Header name (case-insensitive).' }),
    scheme: Type.Optional(Type.String({ pattern: TOKEN, description: 'Auth scheme before the credential, e.g. Bearer (case-insensitive). Default: none, the whole value.' }))
  }, { additionalProperties: false }),
  Type.Object({ cookie: Type.String({ minLength: 1, pattern: '^[^\\s;=]+$', description: 'Cookie name.' }) }, { additionalProperties: false }),
  Type.Object({ query: Type.String({ minLength: 1, description: 'Query parameter name.' }) }, { additionalProperties: false })
], { errorMessage: 'must be { header, scheme? }, { cookie } or { query }' })

export type Location = { header: string, scheme?: string } | { cookie: string } | { query: string }

export interface CompiledLocation {
  /** The credential, or undefined when absent or empty (a header with another scheme counts as absent). */
  read (req: GatewayRequest): string | undefined
  /** Removes it from what is sent upstream. */
  remove (req: GatewayRequest): void
}

function queryParam (query: string, name: string): string | undefined {
  if (query.length < 2) return undefined
  const value = new URLSearchParams(query).get(name)
  return value === null || value === '' ? undefined : value
}

/** The query without `name`: unchanged when it does not hold it (no stray `?`, the other pairs as sent). */
function withoutParam (query: string, name: string): string {
  if (query.length < 2) return query
  const pairs = query.slice(1).split('&')
  const kept = pairs.filter(pair => {
    const raw = pair.split('=', 1)[0] as string
    try { return decodeURIComponent(raw.replace(/\+/g, ' ')) !== name } catch { return true }
  })
  return kept.length === pairs.length ? query : kept.length === 0 ? '' : `?${kept.join('&')}`
}

function cookie (header: string | string[] | undefined, name: string): string | undefined {
  if (typeof header !== 'string') return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq > 0 && pair.slice(0, eq).trim() === name) return unquoted(pair.slice(eq + 1).trim()) || undefined
  }
  return undefined
}

/** A cookie value may be sent in double quotes (RFC 6265 4.1.1): they are not part of it. */
function unquoted (value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
}

/** Compiled once at setup: header names lower-cased, the scheme prefix prepared. */
export function compileLocation (location: Location): CompiledLocation {
  if ('query' in location) {
    const name = location.query
    return { read: req => queryParam(req.query, name), remove: req => { req.query = withoutParam(req.query, name) } }
  }
  if ('cookie' in location) {
    // Cookies are not removed: others may share the header, and the upstream may own some.
    const name = location.cookie
    return { read: req => cookie(req.headers.cookie, name), remove: () => {} }
  }
  const header = location.header.toLowerCase()
  if (isIdentityHeader(header)) {
    throw new Error(`header "${location.header}" is one the gateway sets for the upstream (x-consumer-*, x-anonymous-consumer), removed from every request: name another`)
  }
  const scheme = location.scheme?.toLowerCase() ?? ''
  // The scheme, then white space (RFC 9110 11.4: 1*SP; a tab too, as many servers read it): a
  // "Bearer<TAB>token" that counted as no token went unverified to the upstream of an optional route.
  const ofScheme = (value: string) => value.length > scheme.length + 1 && (value[scheme.length] === ' ' || value[scheme.length] === '\t') &&
    value.slice(0, scheme.length).toLowerCase() === scheme
  return {
    read (req) {
      const value = req.headers[header]
      if (typeof value !== 'string') return undefined
      if (scheme === '') return value === '' ? undefined : value
      return ofScheme(value) ? value.slice(scheme.length + 1).trim() || undefined : undefined
    },
    // With a scheme, only a value of that scheme: Authorization: Basic is basic-auth's to hide or keep, not jwt-auth's.
    remove (req) {
      const value = req.headers[header]
      if (scheme === '' || (typeof value === 'string' && ofScheme(value))) req.headers[header] = undefined
    }
  }
}

/** The first location that holds a credential wins. Header locations are redacted from the route's logged headers. */
export function compileLocations (locations: readonly Location[], ctx: Pick<PluginSetupContext, 'redactHeaders'>): CompiledLocation {
  ctx.redactHeaders(...locations.flatMap(l => 'header' in l ? [l.header] : []))
  const compiled = locations.map(compileLocation)
  if (compiled.length === 1) return compiled[0] as CompiledLocation
  return {
    read (req) {
      for (const l of compiled) {
        const value = l.read(req)
        if (value !== undefined) return value
      }
      return undefined
    },
    remove (req) { for (const l of compiled) l.remove(req) }
  }
}
