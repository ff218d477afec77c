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
  /**
   * The credential, or undefined when absent (an empty header, or one with another scheme, too).
   * '' for a query parameter or cookie sent empty or more than once: present, so judged and refused
   * as malformed (upstreams split, decode and pick among duplicates each their own way).
   */
  read (req: GatewayRequest): string | undefined
  /** Removes it from what is sent upstream. */
  remove (req: GatewayRequest): void
}

function queryParam (query: string, name: string): string | undefined {
  if (query.length < 2) return undefined
  const values = new URLSearchParams(query).getAll(name)
  // Some upstreams split on `;` too (Rack 2, Perl's CGI, Go before 1.17): `?t=good&x=1;t=forged`
  // must read the same both ways, or it is one more copy the gateway did not verify.
  if (query.includes(';')) {
    const split = new URLSearchParams(query.replaceAll(';', '&')).getAll(name)
    if (split.length !== values.length || split[0] !== values[0]) return ''
  }
  return values.length === 0 ? undefined : values.length === 1 ? values[0] : ''
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

/** The Cookie header as one string: Node joins several (HTTP/2) with `; `; a plugin may have set a list. */
function cookieHeader (value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join('; ') : undefined
}

/**
 * Whether a cookie pair is `name`'s. Also percent-encoded (PHP decodes names) and without `=`
 * (PHP's empty cookie, as URLSearchParams reads `?name`): ways an upstream may still read it.
 */
function isCookie (pair: string, name: string): boolean {
  const eq = pair.indexOf('=')
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).trim()
  if (raw === name) return true
  if (!raw.includes('%')) return false
  try { return decodeURIComponent(raw) === name } catch { return false }
}

function cookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  let value: string | undefined
  for (const pair of header.split(';')) {
    if (!isCookie(pair, name)) continue
    if (value !== undefined) return ''
    const eq = pair.indexOf('=')
    value = eq === -1 ? '' : unquoted(pair.slice(eq + 1).trim())
  }
  return value
}

/** The Cookie header without `name`'s pairs (the others as `a=1; b=2`): unchanged without one, undefined when none is left. */
function withoutCookie (header: string, name: string): string | undefined {
  const pairs = header.split(';')
  const kept = pairs.filter(pair => !isCookie(pair, name))
  if (kept.length === pairs.length) return header
  const rest = kept.map(pair => pair.trim()).filter(pair => pair !== '')
  return rest.length === 0 ? undefined : rest.join('; ')
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
    const name = location.cookie
    return {
      read: req => cookie(cookieHeader(req.headers.cookie), name),
      // Only its pairs: the upstream may own the other cookies.
      remove: req => {
        const header = cookieHeader(req.headers.cookie)
        if (header !== undefined) req.headers.cookie = withoutCookie(header, name)
      }
    }
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

/**
 * The first location that holds a credential decides, '' too (a bad one is not passed over for a
 * later one). Header locations are redacted from the route's logged headers.
 */
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
