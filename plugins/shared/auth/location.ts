import { isIdentityHeader, TOKEN, Type, underscoreSpellings, type GatewayRequest, type PluginSetupContext } from '../../../src/index.ts'


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
   * '' for a header of the scheme without white space and a credential after it (`Bearer`,
   * `Bearer,t`, `Bearer\u00a0t`): present, so refused as malformed (upstreams split on other white space).
   * '' for a query parameter sent empty or more than once, or a cookie whose first pair is empty:
   * present, so judged and refused as malformed (upstreams split, decode and pick among duplicates
   * each their own way). A cookie sent more than once is its first pair (RFC 6265 5.4: the most
   * specific path first), as browsers do send it: reading removes the other pairs of its name from
   * req.headers.cookie, so the upstream sees only the copy judged.
   */
  read (req: GatewayRequest): string | undefined
  /** Removes it from what is sent upstream. */
  remove (req: GatewayRequest): void
  /**
   * Removes from what is sent upstream what the upstream could read as this location though the
   * gateway never reads it: the header under another `_` spelling (CGI, WSGI and PHP read
   * `x_api_key` as X-Api-Key).
   */
  scrub (req: GatewayRequest): void
}

/**
 * PHP's reading of a (decoded) name: cut at a NUL, leading spaces dropped, `.`, space and `[` as
 * `_` (it does so to `[` without a `]` after it only; to all of them here: a few more copies).
 */
function phpName (name: string): string {
  const nul = name.indexOf('\0')
  return (nul === -1 ? name : name.slice(0, nul)).replace(/^ +/, '').replace(/[ .[]/g, '_')
}

/**
 * Whether a decoded name is `name` as some upstream reads it: itself, or the same once PHP
 * mangles both (`api.key`, `api key`, `api[key` for `api_key`, which $_GET or $_COOKIE holds so).
 */
function sameName (name: string): (decoded: string) => boolean {
  const php = phpName(name)
  return decoded => decoded === name || decoded === php || (/[ .[\0]/.test(decoded) && phpName(decoded) === php)
}

/** Whether two query parameter or cookie names are one as some upstream reads them (PHP's `access.token` is `access_token`). */
export const sameParamName = (a: string, b: string): boolean => phpName(a) === phpName(b)

/** The values of the parameters `named`, in order. */
function paramValues (query: string, named: (decoded: string) => boolean): string[] {
  const values: string[] = []
  for (const [key, value] of new URLSearchParams(query)) if (named(key)) values.push(value)
  return values
}

function queryParam (query: string, named: (decoded: string) => boolean): string | undefined {
  if (query.length < 2) return undefined
  const values = paramValues(query, named)
  // Some upstreams split on `;` too (Rack 2, Perl's CGI, Go before 1.17): `?t=good&x=1;t=forged`
  // must read the same both ways, or it is one more copy the gateway did not verify.
  if (query.includes(';')) {
    const split = paramValues(query.replaceAll(';', '&'), named)
    if (split.length !== values.length || split[0] !== values[0]) return ''
  }
  return values.length === 0 ? undefined : values.length === 1 ? values[0] : ''
}

/** The query without `named` parameters: unchanged when it holds none (no stray `?`, the other pairs as sent). */
function withoutParam (query: string, named: (decoded: string) => boolean): string {
  if (query.length < 2) return query
  const pairs = query.slice(1).split('&')
  const kept = pairs.filter(pair => {
    const raw = pair.split('=', 1)[0] as string
    try { return !named(decodeURIComponent(raw.replace(/\+/g, ' '))) } catch { return true }
  })
  return kept.length === pairs.length ? query : kept.length === 0 ? '' : `?${kept.join('&')}`
}

/** The Cookie header as one string: Node joins several (HTTP/2) with `; `; a plugin may have set a list. */
function cookieHeader (value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join('; ') : undefined
}

/**
 * Whether a cookie pair is `named`'s. Also percent-encoded, `+` a space (PHP decodes names so),
 * and without `=` (PHP's empty cookie, as URLSearchParams reads `?name`): ways an upstream may still read it.
 */
function isCookie (pair: string, named: (decoded: string) => boolean): boolean {
  const eq = pair.indexOf('=')
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).trim()
  if (named(raw)) return true
  if (!raw.includes('%') && !raw.includes('+')) return false
  try { return named(decodeURIComponent(raw.replace(/\+/g, ' '))) } catch { return false }
}

/** The pairs as a Cookie header, `a=1; b=2`: undefined when none is left. */
function joinCookies (pairs: string[]): string | undefined {
  const rest = pairs.map(pair => pair.trim()).filter(pair => pair !== '')
  return rest.length === 0 ? undefined : rest.join('; ')
}

/** The cookie's first pair; the others of its name are removed from the request (the header rewritten only then). */
function cookie (req: GatewayRequest, named: (decoded: string) => boolean): string | undefined {
  const header = cookieHeader(req.headers.cookie)
  if (header === undefined) return undefined
  const pairs = header.split(';')
  // Some upstreams split cookies on `,` too (Rack 2, the old `cookie` module): a copy behind one
  // (`a=1, session=forged`) is one the gateway did not judge.
  if (header.includes(',') && header.split(/[;,]/).filter(pair => isCookie(pair, named)).length > pairs.filter(pair => isCookie(pair, named)).length) return ''
  const first = pairs.findIndex(pair => isCookie(pair, named))
  if (first === -1) return undefined
  const pair = pairs[first] as string
  if (pairs.some((other, i) => i > first && isCookie(other, named))) {
    req.headers.cookie = joinCookies(pairs.filter((other, i) => i <= first || !isCookie(other, named)))
  }
  const eq = pair.indexOf('=')
  return eq === -1 ? '' : unquoted(pair.slice(eq + 1).trim())
}

/** The Cookie header without `named`'s pairs: unchanged without one, undefined when none is left. */
function withoutCookie (header: string, named: (decoded: string) => boolean): string | undefined {
  const pairs = header.split(';')
  const kept = pairs.filter(pair => !isCookie(pair, named))
  return kept.length === pairs.length ? header : joinCookies(kept)
}

/** A cookie value may be sent in double quotes (RFC 6265 4.1.1): they are not part of it. */
function unquoted (value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
}

/** Only SP and HTAB are white space around a credential (RFC 9110 5.6.3): `\u00a0t` is a credential to judge, not `t`. */
const trimmed = (value: string): string => value.replace(/^[ \t]+|[ \t]+$/g, '')

const NOTHING = (): void => {}

/** Compiled once at setup: header names lower-cased, the scheme prefix prepared. */
export function compileLocation (location: Location): CompiledLocation {
  if ('query' in location) {
    const named = sameName(location.query)
    return { read: req => queryParam(req.query, named), remove: req => { req.query = withoutParam(req.query, named) }, scrub: NOTHING }
  }
  if ('cookie' in location) {
    const named = sameName(location.cookie)
    return {
      read: req => cookie(req, named),
      // Only its pairs: the upstream may own the other cookies.
      remove: req => {
        const header = cookieHeader(req.headers.cookie)
        if (header !== undefined) req.headers.cookie = withoutCookie(header, named)
      },
      scrub: NOTHING
    }
  }
  const header = location.header.toLowerCase()
  if (isIdentityHeader(header)) {
    throw new Error(`header "${location.header}" is one the gateway sets for the upstream (x-consumer-*, x-anonymous-consumer), removed from every request: name another`)
  }
  const dashed = header.replaceAll('_', '-')
  const spellings = [dashed, ...underscoreSpellings(dashed)].filter(name => name !== header)
  const scheme = location.scheme?.toLowerCase() ?? ''
  // A value starting with the scheme is the plugin's: then white space (RFC 9110 11.4: 1*SP; a tab
  // too, as many servers read it) and the credential, or it is malformed, never no credential:
  // "Bearer\u00a0forged" taken for none went unverified to the upstream of an optional route.
  const ofScheme = (value: string) => value.slice(0, scheme.length).toLowerCase() === scheme
  return {
    read (req) {
      const value = req.headers[header]
      if (typeof value !== 'string') return undefined
      if (scheme === '') return value === '' ? undefined : value
      if (!ofScheme(value)) return undefined
      const after = value[scheme.length]
      return after === ' ' || after === '\t' ? trimmed(value.slice(scheme.length + 1)) : ''
    },
    // With a scheme, only a value of that scheme: Authorization: Basic is basic-auth's to hide or keep, not jwt-auth's.
    remove (req) {
      const value = req.headers[header]
      if (value !== undefined && (scheme === '' || (typeof value === 'string' && ofScheme(value)))) req.headers[header] = undefined
    },
    scrub: spellings.length === 0
      ? NOTHING
      : req => { for (const name of spellings) if (req.headers[name] !== undefined) req.headers[name] = undefined }
  }
}

/**
 * The first location that holds a credential decides, '' too (a bad one is not passed over for a
 * later one); the others are then removed from the request, whatever hideCredentials says: a
 * value there (a stale cookie beside a fresh header, a forged query parameter) is one the gateway
 * did not verify. Header locations are redacted from the route's logged headers.
 */
export function compileLocations (locations: readonly Location[], ctx: Pick<PluginSetupContext, 'redactHeaders'>): CompiledLocation {
  ctx.redactHeaders(...locations.flatMap(l => 'header' in l ? [l.header] : []))
  const compiled = locations.map(compileLocation)
  if (compiled.length === 1) return compiled[0] as CompiledLocation
  return {
    read (req) {
      for (const l of compiled) {
        const value = l.read(req)
        if (value === undefined) continue
        for (const other of compiled) if (other !== l) other.remove(req)
        return value
      }
      return undefined
    },
    remove (req) { for (const l of compiled) l.remove(req) },
    scrub (req) { for (const l of compiled) l.scrub(req) }
  }
}
