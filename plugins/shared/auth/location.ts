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
   * '' for a header of the scheme without white space and a credential after it (`Bearer,t`,
   * `Bearer\u00a0t`): present, so refused as malformed (upstreams split on other white space);
   * the scheme alone (`Bearer`, as apps send before login) is none: it carries nothing.
   * '' for a query parameter sent empty, more than once, as an array (`t[]=`) or beside `T=` (in
   * another case), or a cookie whose first pair is empty or an array: present, so judged and refused as malformed (upstreams
   * split, decode and pick among duplicates each their own way). A cookie sent more than once is
   * its first pair (RFC 6265 5.4: the most specific path first), as browsers do send it: reading
   * removes the other pairs of its name from req.headers.cookie, so the upstream sees only the copy judged.
   */
  read (req: GatewayRequest): string | undefined
  /** Removes it from what is sent upstream. */
  remove (req: GatewayRequest): void
  /**
   * As remove, for when another location or another auth plugin of the route decided: a value
   * there is one the gateway did not verify. But the header the credential that decided was read
   * from stays (a location reading it whole beside the decider's scheme), and so does
   * Sec-WebSocket-Protocol: a subprotocol the client offers (graphql-ws beside a Bearer token), for
   * the upstream to select, which no upstream takes for a credential by itself.
   */
  removeUnjudged (req: GatewayRequest): void
  /** As remove, for a query parameter only (a header or cookie stays): for what passes the query on elsewhere (redirect's Location). */
  removeFromQuery (req: GatewayRequest): void
  /**
   * Removes from what is sent upstream what the upstream could read as this location though the
   * gateway never reads it as the credential: the header under another `_` spelling (CGI, WSGI
   * and PHP read `x_api_key` as X-Api-Key), the query parameter in another case (ASP.NET reads
   * `ACCESS_TOKEN` as access_token). Run after read: a copy beside the credential makes it malformed.
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
 * How a decoded name is a location's as some upstream reads it: not at all (false); as the name
 * ('name'): itself, or the same once PHP mangles both (`api.key`, `api key`, `api[key` for
 * `api_key`, which $_GET or $_COOKIE holds so); or as its array ('array'): `api_key[]`,
 * `api_key[x]`, which PHP and Rack read as `api_key` holding a list or map, no one credential.
 * A query parameter's also as a copy ('copy'): its name in another case (queryName).
 */
type Named = (decoded: string) => false | 'name' | 'array' | 'copy'

/** A name as ASP.NET's Request.Query reads it, in any case, PHP's mangling too (so `Access.Token` is one more copy). */
const folded = (name: string): string => phpName(name).toLowerCase()

/** Named as PHP reads it, or (anyCase) in any case too. */
function sameName (name: string, anyCase = false): Named {
  const norm = anyCase ? folded : phpName
  const normal = norm(name)
  return decoded => {
    if (decoded === name || decoded === normal) return 'name'
    if (!/[ .[\0]/.test(decoded)) return anyCase && decoded.toLowerCase() === normal ? 'name' : false
    if (norm(decoded) === normal) return 'name'
    // PHP takes the name up to the first `[` that a `]` follows.
    const open = decoded.indexOf('[')
    return open > 0 && decoded.includes(']', open) && norm(decoded.slice(0, open)) === normal ? 'array' : false
  }
}

/**
 * Rack 2's reading of a query name (normalize_params): brackets before the first run without
 * them and `]` after it dropped (`[api_key]`, `]api_key`, `api_key]` are api_key; qs, Express's
 * parser, reads `[api_key]` so too), then, but for a lone `[` (the whole name kept), its keys.
 */
const RACK_NAME = /^[[\]]*([^[\]]+)\]*/

/**
 * A query parameter's Named: as PHP reads it (sameName); as Rack 2 and qs read it when PHP does
 * not (RACK_NAME): its array form, never one credential; or, in another case (`ACCESS_TOKEN`), a
 * 'copy', which ASP.NET reads as it though no other upstream does: never the credential (a lone
 * one is none), malformed beside it, and removed before the upstream whatever decides
 * (CompiledLocation.scrub). Cookie names are case-sensitive everywhere but ASP.NET (RFC 6265;
 * Spring Session's `SESSION` beside an app's `session`): no copy there; nor brackets (PHP alone
 * reads them in cookies, as sameName does).
 */
function queryName (name: string): Named {
  const exact = sameName(name)
  const anyCase = sameName(name, true)
  const normal = phpName(name)
  const rack = (decoded: string): boolean => {
    const match = RACK_NAME.exec(decoded)
    return match !== null && decoded.slice(match[0].length) !== '[' && phpName(match[1] as string) === normal
  }
  return decoded => exact(decoded) || (rack(decoded) ? 'array' : anyCase(decoded) === false ? false : 'copy')
}

/** Whether two query parameter or cookie names are one as PHP reads them (`access.token` is `access_token`). */
export const samePhpName = (a: string, b: string): boolean => phpName(a) === phpName(b)

/** Whether two query parameter names are one as some upstream reads them: as PHP does, or in any case, as ASP.NET does. */
export const sameQueryName = (a: string, b: string): boolean => folded(a) === folded(b)

type Match = ReturnType<Named>
const isNamed = (match: Match): boolean => match !== false
const isCopy = (match: Match): boolean => match === 'copy'

/**
 * One piece of a list split on `outer` (`&` in a query, `;` in a cookie), and how it is named; in a
 * part split on `inner` too, a bare piece after another (no `=`) is part of the value before it
 * (subPairs, queryParam): not named (undefined).
 */
interface Piece { readonly text: string, readonly match: Match | undefined }
/** A part of the list: named as a whole, and its pieces when it holds `inner`. */
interface Part { readonly text: string, readonly match: Match, readonly pieces: readonly Piece[] | undefined }

/** `list` split on `outer`, each part's name read once for what reads and removes it after. */
function parts (list: string, outer: string, inner: string, classify: (pair: string) => Match): Part[] {
  return list.split(outer).map(text => ({
    text,
    match: classify(text),
    pieces: text.includes(inner) ? text.split(inner).map(piece => ({ text: piece, match: piece.includes('=') ? classify(piece) : undefined })) : undefined
  }))
}

/**
 * The parts less the pieces `is` takes (with the bare pieces after one: its value), the rest with
 * their separators: undefined when none is removed.
 */
function withoutParts (list: readonly Part[], inner: string, is: (match: Match) => boolean): string[] | undefined {
  let removed = false
  const kept: string[] = []
  for (const part of list) {
    if (part.pieces === undefined) {
      if (is(part.match)) removed = true
      else kept.push(part.text)
      continue
    }
    let named = false
    const rest: string[] = []
    for (const piece of part.pieces) {
      if (piece.match !== undefined) named = is(piece.match)
      if (!named) rest.push(piece.text)
    }
    if (rest.length === part.pieces.length) kept.push(part.text)
    else {
      removed = true
      if (rest.length > 0) kept.push(rest.join(inner))
    }
  }
  return removed ? kept : undefined
}

/** The values of the parameters named, in order ('' for its array form: malformed, as an empty one), and whether a copy is among them. */
function paramValues (pairs: readonly Piece[]): { values: string[], copied: boolean } {
  const values: string[] = []
  let copied = false
  for (const { text, match } of pairs) {
    if (text === '' || match === false || match === undefined) continue
    if (match === 'copy') { copied = true; continue }
    const eq = text.indexOf('=')
    values.push(match === 'array' || eq === -1 ? '' : formDecode(text.slice(eq + 1)))
  }
  return { values, copied }
}

function queryParam (list: readonly Part[]): string | undefined {
  const { values, copied } = paramValues(list)
  let copiedToo = copied
  // Some upstreams split on `;` too (Rack 2, Perl's CGI, Go before 1.17): `?t=good&x=1;t=forged`
  // must read the same both ways, or it is one more copy the gateway did not verify.
  if (list.some(part => part.pieces !== undefined)) {
    const split = paramValues(list.flatMap(part => part.pieces?.filter(piece => piece.match !== undefined) ?? [part]))
    if (split.values.length !== values.length || split.values[0] !== values[0]) return ''
    copiedToo ||= split.copied
  }
  return values.length === 0 ? undefined : values.length === 1 && !copiedToo ? values[0] : ''
}

const HEX = /^[0-9A-Fa-f]{2}$/
const PLAIN = /^[^%\u0080-\uffff]*$/
const utf8Text = new TextDecoder('utf-8', { ignoreBOM: true })

/**
 * A query name or value as its bytes say (Node reads each byte of the request target as one
 * character): `+` a space, `%XX` a byte, a `%` that starts no escape kept (as URLSearchParams and
 * PHP keep it), the bytes read as UTF-8, those that are none as U+FFFD. It never throws, as
 * decodeURIComponent does: reading and removing decode names by this alone, so they agree
 * (`api_key%00%FF` is read as `api_key`, as PHP reads it, so it is removed too).
 */
export function formDecode (text: string): string {
  const spaced = text.includes('+') ? text.replaceAll('+', ' ') : text
  if (PLAIN.test(spaced)) return spaced
  const bytes: number[] = []
  for (let i = 0; i < spaced.length; i++) {
    const code = spaced.charCodeAt(i)
    const hex = code === 0x25 ? spaced.slice(i + 1, i + 3) : ''
    if (HEX.test(hex)) {
      bytes.push(parseInt(hex, 16))
      i += 2
    } else if (code < 0x100) bytes.push(code)
    else {
      // Above Latin-1 only from a plugin's query: as UTF-8 (a lone surrogate as U+FFFD).
      const char = String.fromCodePoint(spaced.codePointAt(i) as number)
      bytes.push(...Buffer.from(char, 'utf8'))
      i += char.length - 1
    }
  }
  return utf8Text.decode(Uint8Array.from(bytes))
}

/**
 * Whether a query, or a pair's name as sent, may hold `name` as queryName reads it: only then is it
 * decoded and read. Without a `%` and past ASCII, a name is its bytes (`+` a space), so one read as
 * `name` holds it folded: in any case, `_` as any of `_.+[` (or a space, in a plugin's query). A
 * `%` may spell any letter (`%61pi_key`), a character past ASCII may fold into one (U+212A KELVIN
 * SIGN is `k` in lower case): a text with either may.
 */
function mayHold (name: string): (text: string) => boolean {
  const spelt = new RegExp(folded(name).split('').map(c => c === '_' ? '[_.+[ ]' : /[a-z0-9]/.test(c) ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''), 'i')
  return text => !PLAIN.test(text) || spelt.test(text)
}

/**
 * A query parameter's parts of a query (undefined when it cannot hold the parameter): read once
 * and kept for the next call on the same query, as reading, scrubbing and removing it follow
 * each other (a client's 7,000 empty pairs were parsed three times, on every request).
 */
function queryParts (name: string): (query: string) => readonly Part[] | undefined {
  const named = queryName(name)
  const may = mayHold(name)
  const classify = (pair: string): Match => {
    const eq = pair.indexOf('=')
    const raw = eq === -1 ? pair : pair.slice(0, eq)
    return may(raw) ? named(formDecode(raw)) : false
  }
  let last = ''
  let lastParts: readonly Part[] | undefined
  return query => {
    if (query !== last) {
      last = query
      lastParts = query.length < 2 || !may(query) ? undefined : parts(query.slice(1), '&', ';', classify)
    }
    return lastParts
  }
}

/**
 * The query without the parameters `is` takes, behind a `;` too (read as a copy by queryParam):
 * unchanged when it holds none (the other pairs as sent), '' when only separators are left (no stray `?`).
 */
function withoutParam (query: string, list: readonly Part[] | undefined, is: (match: Match) => boolean): string {
  const kept = list === undefined ? undefined : withoutParts(list, ';', is)
  if (kept === undefined) return query
  const rest = kept.join('&')
  return /^[&;]*$/.test(rest) ? '' : `?${rest}`
}

/**
 * The pairs of a cookie header's part as upstreams that split on `,` too read them: the part itself
 * when it holds none, else only its pieces with `=`. A bare name there is no credential an
 * upstream verifies but part of the value before it (`consent=ads,session`), not a copy to refuse.
 */
function subPairs (part: string): string[] {
  const pieces = part.split(',')
  return pieces.length === 1 ? pieces : pieces.filter(piece => piece.includes('='))
}

/** The Cookie header as one string: Node joins several (HTTP/2) with `; `; a plugin may have set a list. */
function cookieHeader (value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : Array.isArray(value) ? value.join('; ') : undefined
}

/**
 * How a cookie pair is `named`'s (Named). Also percent-encoded, `+` a space, a bad escape kept (PHP
 * decodes names so: `api_key%00%FF` is its api_key), and without `=` (PHP's empty cookie, as a
 * bare `?name` in a query): ways an upstream may still read it.
 */
function cookieName (pair: string, named: Named): ReturnType<Named> {
  const eq = pair.indexOf('=')
  const raw = (eq === -1 ? pair : pair.slice(0, eq)).trim()
  const match = named(raw)
  return match !== false || (!raw.includes('%') && !raw.includes('+')) ? match : named(formDecode(raw))
}

const isCookie = (pair: string, named: Named): boolean => cookieName(pair, named) !== false

/** The pairs as a Cookie header, `a=1; b=2`: undefined when none is left. */
function joinCookies (pairs: string[]): string | undefined {
  const rest = pairs.map(pair => pair.trim()).filter(pair => pair !== '')
  return rest.length === 0 ? undefined : rest.join('; ')
}

/** The cookie's first pair; the others of its name are removed from the request (the header rewritten only then). */
function cookie (req: GatewayRequest, named: Named): string | undefined {
  const header = cookieHeader(req.headers.cookie)
  if (header === undefined) return undefined
  const pairs = header.split(';')
  // Some upstreams split cookies on `,` too (Rack 2, the old `cookie` module): a copy behind one
  // (`a=1, session=forged`) is one the gateway did not judge.
  if (header.includes(',') && pairs.flatMap(subPairs).filter(pair => isCookie(pair, named)).length > pairs.filter(pair => isCookie(pair, named)).length) return ''
  const first = pairs.findIndex(pair => isCookie(pair, named))
  if (first === -1) return undefined
  const pair = pairs[first] as string
  if (pairs.some((other, i) => i > first && isCookie(other, named))) {
    req.headers.cookie = joinCookies(pairs.filter((other, i) => i <= first || !isCookie(other, named)))
  }
  const eq = pair.indexOf('=')
  return eq === -1 || cookieName(pair, named) === 'array' ? '' : unquoted(pair.slice(eq + 1).trim())
}

/**
 * The Cookie header without `named`'s pairs, behind a `,` too (read as a copy by cookie()):
 * unchanged without one, undefined when none is left.
 */
function withoutCookie (header: string, named: Named): string | undefined {
  const kept = withoutParts(parts(header, ';', ',', pair => cookieName(pair, named)), ',', isNamed)
  return kept === undefined ? header : joinCookies(kept)
}

/** A cookie value may be sent in double quotes (RFC 6265 4.1.1): they are not part of it. */
function unquoted (value: string): string {
  return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value
}

/**
 * Only SP and HTAB are white space around a credential (RFC 9110 5.6.3): `\u00a0t` is a credential
 * to judge, not `t`. By a loop: `[ \t]+$` backtracks quadratically on a run of spaces inside
 * (`Bearer a<16,000 spaces>x` took 0.55 s, from any client).
 */
function trimmed (value: string): string {
  let start = 0
  let end = value.length
  while (start < end && isBlank(value.charCodeAt(start))) start++
  while (end > start && isBlank(value.charCodeAt(end - 1))) end--
  return start === 0 && end === value.length ? value : value.slice(start, end)
}
const isBlank = (code: number): boolean => code === 32 || code === 9

const NOTHING = (): void => {}

/**
 * The header each request's credential was read from, by the location that decided: another auth
 * plugin of the route reading that header too (its whole value, where the decider reads a scheme)
 * leaves it for the decider's hideCredentials (CompiledLocation.removeUnjudged).
 */
const judgedHeader = new WeakMap<GatewayRequest, string>()

/** Compiled once at setup: header names lower-cased, the scheme prefix prepared. */
export function compileLocation (location: Location): CompiledLocation {
  if ('query' in location) {
    const parse = queryParts(location.query)
    const without = (req: GatewayRequest, is: (match: Match) => boolean): void => {
      const query = withoutParam(req.query, parse(req.query), is)
      if (query !== req.query) req.query = query
    }
    const remove = (req: GatewayRequest): void => { without(req, isNamed) }
    return {
      read (req) {
        const list = parse(req.query)
        return list === undefined ? undefined : queryParam(list)
      },
      remove,
      removeUnjudged: remove,
      removeFromQuery: remove,
      scrub: req => { without(req, isCopy) }
    }
  }
  if ('cookie' in location) {
    const named = sameName(location.cookie)
    // Only its pairs: the upstream may own the other cookies.
    const remove = (req: GatewayRequest): void => {
      const header = cookieHeader(req.headers.cookie)
      if (header !== undefined) req.headers.cookie = withoutCookie(header, named)
    }
    return { read: req => cookie(req, named), remove, removeUnjudged: remove, removeFromQuery: NOTHING, scrub: NOTHING }
  }
  const header = location.header.toLowerCase()
  if (isIdentityHeader(header)) {
    throw new Error(`header "${location.header}" is one the gateway sets for the upstream (x-consumer-*, x-anonymous-consumer), removed from every request: name another`)
  }
  const scheme = location.scheme?.toLowerCase() ?? ''
  // A value starting with the scheme is the plugin's: then white space (RFC 9110 11.4: 1*SP; a tab
  // too, as many servers read it) and the credential, or it is malformed, never no credential:
  // "Bearer\u00a0forged" taken for none went unverified to the upstream of an optional route.
  // Only the scheme alone is none (`Bearer ${token ?? ''}`, Node drops the trailing space).
  const ofScheme = (value: string) => value.slice(0, scheme.length).toLowerCase() === scheme
  const credential = (value: string): string | undefined => {
    if (scheme === '') return value === '' ? undefined : value
    if (!ofScheme(value)) return undefined
    const rest = trimmed(value.slice(scheme.length))
    if (rest === '') return undefined
    const after = value[scheme.length]
    return after === ' ' || after === '\t' ? rest : ''
  }
  // With a scheme, only a value of that scheme: Authorization: Basic is basic-auth's to hide or keep, not jwt-auth's.
  const remove = (req: GatewayRequest): void => {
    const value = req.headers[header]
    if (value !== undefined && (scheme === '' || (typeof value === 'string' && ofScheme(value)))) req.headers[header] = undefined
  }
  return {
    read (req) {
      const value = req.headers[header]
      const found = typeof value === 'string' ? credential(value) : undefined
      if (found !== undefined) judgedHeader.set(req, header)
      return found
    },
    remove,
    // A subprotocol offered (graphql-ws beside a Bearer token) is for the upstream to select; no upstream takes it for a credential by itself.
    removeUnjudged: header === 'sec-websocket-protocol' ? NOTHING : req => { if (judgedHeader.get(req) !== header) remove(req) },
    removeFromQuery: NOTHING,
    scrub: spellingScrub([header])
  }
}

/** A header name as CGI, WSGI and PHP servers read it: `x_api_key` is X-Api-Key (HTTP_X_API_KEY). */
const dashed = (name: string): string => name.toLowerCase().replaceAll('_', '-')

/**
 * Removes the headers that are one of `headers` (lower-case) under another `_` spelling. Compared
 * once normalized (dashed), not by listing the spellings: a name with n dashes has 2^n of them.
 */
function spellingScrub (headers: readonly string[]): (req: GatewayRequest) => void {
  if (!headers.some(name => name.includes('-') || name.includes('_'))) return NOTHING
  const own = new Set(headers)
  const names = new Set(headers.map(dashed))
  // The only other spelling without a `_`: the dashed one of a name written with one.
  const plain = [...names].filter(name => !own.has(name))
  return req => {
    for (const name of plain) if (req.headers[name] !== undefined) req.headers[name] = undefined
    for (const name in req.headers) if (name.includes('_') && !own.has(name) && names.has(dashed(name))) req.headers[name] = undefined
  }
}

/** The steps that do something, run in turn. */
function allOf (steps: ReadonlyArray<(req: GatewayRequest) => void>): (req: GatewayRequest) => void {
  const some = steps.filter(step => step !== NOTHING)
  return some.length === 0 ? NOTHING : some.length === 1 ? some[0] as (req: GatewayRequest) => void : req => { for (const step of some) step(req) }
}

/**
 * The first location that holds a credential decides, '' too (a bad one is not passed over for a
 * later one); the others are then removed from the request (removeUnjudged), whatever
 * hideCredentials says: a value there (a stale cookie beside a fresh header, a forged query
 * parameter) is one the gateway did not verify. Header locations are redacted from the route's logged headers.
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
        for (const other of compiled) if (other !== l) other.removeUnjudged(req)
        return value
      }
      return undefined
    },
    remove (req) { for (const l of compiled) l.remove(req) },
    removeUnjudged: allOf(compiled.map(l => l.removeUnjudged)),
    removeFromQuery: allOf(compiled.map(l => l.removeFromQuery)),
    scrub: allOf([
      // One pass over the request's headers for all of them.
      spellingScrub(locations.flatMap(l => 'header' in l ? [l.header.toLowerCase()] : [])),
      ...compiled.filter((_, i) => 'query' in (locations[i] as Location)).map(l => l.scrub)
    ])
  }
}
