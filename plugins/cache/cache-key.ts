import { normalizeHost as routingHost } from '../../src/index.ts'
import type { CacheConfig } from './schema.ts'

/** Where a request's responses are stored: the primary key, and the tag that invalidation and URL purges use. */
export interface RequestKey {
  /**
   * `c:<route>:<path>?<query>#<host>|<proto>|`, `@<forwarded host>|` when the upstream is told
   * another host than `<host>`, `(<name>=<value>|` for other forwarding headers (forwardingParts),
   * `<headers>`, then `><upstream path>` when that is another path.
   */
  readonly primary: string
  /** `u:<host><path>`: every stored query and header variant of the path. */
  readonly urlTag: string
  /** A parameter the key leaves out may be read upstream as one it keeps (see sortedQuery): not cached. */
  readonly ambiguous?: true
}

/** Whether a tag is a URL tag (RequestKey.urlTag), not a surrogate key's (`s:`, see surrogateTag). */
export const isUrlTag = (tag: string): boolean => tag.startsWith('u:')

type Headers = Readonly<Record<string, string | string[] | undefined>>
/**
 * `host`: the client's; `query`, `headers` and `upstreamPath`: the request's as they reach the
 * cache (plugins before it may have changed them). `headers` are those sent upstream: their
 * X-Forwarded-Proto/-Host are the gateway's, or a trusted proxy's (applyForwarded).
 */
export type KeyBuilder = (path: string, query: string, host: string | string[] | undefined, headers: Headers, upstreamPath?: string) => RequestKey

/** Builds the key function of a route once, at setup: query filter, header list, host. */
export function compileKey (route: string, key: CacheConfig['key'] = {}): KeyBuilder {
  const withHost = key.host ?? true
  const keyQuery = compileQuery(key)
  const headerNames = (key.headers ?? []).map(h => h.toLowerCase())
  const prefix = `c:${route}:`
  return (path, query, clientHost, headers, upstreamPath = path) => {
    const host = withHost ? normalizeHost(clientHost) : ''
    const kept = keyQuery(query)
    // Upstreams build links from the scheme and host they are told: a response is only another
    // request's when they were the same. The host is left out with the Host (key.host: false).
    let k = `${prefix}${path}?${kept ?? ''}#${host}|${forwarded(headers['x-forwarded-proto'])}|`
    // Most often the gateway's own (the Host): nothing to add.
    if (withHost) { const fwdHost = headers['x-forwarded-host']; if ((fwdHost ?? '') !== host) k += `@${forwarded(fwdHost)}|` }
    k += forwardingParts(headers, withHost)
    for (const name of headerNames) { const v = headers[name]; k += `${name}=${v === undefined ? '' : keyPart(String(v))}|` }
    // A route's rewrite follows from the path; a plugin's may not (a version header, say): both are kept apart.
    if (upstreamPath !== path) k += `>${upstreamPath}`
    return kept === undefined ? { primary: k, urlTag: `u:${host}${path}`, ambiguous: true } : { primary: k, urlTag: `u:${host}${path}` }
  }
}

/**
 * The part of a primary key that a URL purge deletes by prefix (all scheme, forwarded host,
 * header and Vary variants): `c:<route>:<path>?<query>#<host>|`, as compileKey starts it.
 * `path`: the URL's path normalized as requests' are (see normalizePath), as keys hold it; `host`
 * its host (and port), `search` its query as requests send it.
 */
export function urlKeyPrefix (route: string, key: CacheConfig['key'] = {}, url: { host: string, search: string }, path: string): string {
  // Not strict: an ambiguous URL purges the entry its requests were served from before they
  // bypassed the cache (one poisoned by an earlier version, say). Undefined only for a query with
  // too many parameters, which a purge refuses before (see tooManyParameters).
  return `c:${route}:${path}?${compileQuery(key, false)(url.search) as string}#${key.host ?? true ? normalizeHost(url.host) : ''}|`
}

/**
 * The key's query part: the parameters kept, sorted by name. undefined when `strict` and a
 * parameter left out may be one kept as an upstream reads it (see sortedQuery).
 */
function compileQuery (key: CacheConfig['key'] = {}, strict = true): (query: string) => string | undefined {
  const include = key.query?.include === undefined ? undefined : new Set(key.query.include)
  const ignore = new Set(key.query?.ignore ?? [])
  // What a name longer than this (in its raw spelling) decodes to is neither listed name: each byte of one is 3 characters at most (`%XX`).
  const longest = 3 * Math.max(0, ...[...include ?? [], ...ignore].map(n => Buffer.byteLength(n)))
  // The forms parsers may read the included names as: a name left out with one of them may be one
  // (compared both ways: `user_id` is PHP's `user.id`, `ids[0]` part of `ids[]`). Not those also
  // ignored: what reads as one is left out anyway.
  const lookalikes = strict && include !== undefined ? new Set([...include].filter(n => !ignore.has(n)).flatMap(readAs)) : undefined
  const filter = include !== undefined || ignore.size > 0 ? { include, ignore, strict, lookalikes, longest } : undefined
  return query => query.length <= 1 ? '' : sortedQuery(query, filter)
}

const SPECIAL = /[%|]/
const SPECIAL_ALL = /[%|]/g
const escape = (c: string) => `%${c.charCodeAt(0).toString(16)}`

/**
 * A request's value as a key holds it: `|` (which ends a key's parts) and `%` escaped, so that a
 * value cannot end its part early and pass for the next ones (another header's, a Vary variant's).
 */
export const keyPart = (s: string): string => SPECIAL.test(s) ? s.replace(SPECIAL_ALL, escape) : s

/** An X-Forwarded-Proto/-Host value as the key holds it (a trusted proxy may pass on its client's). */
function forwarded (v: string | string[] | undefined): string {
  const s = typeof v === 'string' ? v : v === undefined ? '' : v.join(',')
  return s === 'https' || s === 'http' ? s : keyPart(s)
}

/**
 * Forwarding headers a trusted proxy's request takes upstream as sent (src/proxy/forwarded.ts), besides
 * X-Forwarded-Proto/-Host, that an answer may be built from: the scheme, path prefix and URI the
 * upstream builds links from, the client's certificate. Not the client's address (X-Forwarded-For,
 * X-Real-IP, True-Client-IP, CF-Connecting-IP...): one per client, often on every request, they
 * would leave one entry per client.
 */
const KEYED_FORWARDING = ['x-forwarded-prefix', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-url-scheme', 'front-end-https', 'x-forwarded-server',
  'x-forwarded-by', 'x-forwarded-uri', 'x-forwarded-method', 'x-forwarded-client-cert', 'x-forwarded-tls-client-cert', 'x-forwarded-tls-client-cert-info']
/** Lists of RFC 7239 pairs: keyed without their `for=` pairs (see withoutFor). */
const FORWARDED_PAIRS = ['forwarded', 'x-forwarded']

/**
 * The key's part for the forwarding headers above, `(<name>=<value>|` each; empty, without a
 * string built, for a request without them, the common case. X-Forwarded-Port, which the gateway
 * sets on every request, only when a trusted proxy's differs from the one the gateway derives from
 * the forwarded host, when that host is keyed (`withHost`): else always (`shop.example:6666` with
 * port 6666 is not `shop.example` with 80).
 */
function forwardingParts (headers: Headers, withHost: boolean): string {
  let k = ''
  const port = headers['x-forwarded-port']
  if (port !== undefined && !(withHost && impliedPort(port, headers['x-forwarded-host'], headers['x-forwarded-proto']))) k += `(x-forwarded-port=${keyPart(String(port))}|`
  for (const name of FORWARDED_PAIRS) { const v = headers[name]; if (v !== undefined) k += `(${name}=${keyPart(withoutFor(String(v)))}|` }
  for (const name of KEYED_FORWARDING) { const v = headers[name]; if (v !== undefined) k += `(${name}=${keyPart(String(v))}|` }
  return k
}

/** Whether `port` is the one applyForwarded derives from the forwarded host and scheme: the host's, else 443 or 80. Compared in place: no string built. */
function impliedPort (port: string | string[], host: string | string[] | undefined, proto: string | string[] | undefined): boolean {
  if (typeof port !== 'string' || typeof host !== 'string' || port === '') return false
  const colon = host.lastIndexOf(':')
  if (colon === -1 || host.charCodeAt(host.length - 1) === 93 /* ] of an IPv6 literal */) return port === (proto === 'https' ? '443' : proto === 'http' ? '80' : undefined)
  return port.length === host.length - colon - 1 && host.startsWith(port, colon + 1)
}

// A `for=` pair whose value is an address, an obfuscated name or `unknown` (letters, digits, `.:_-[]`),
// quoted whole or not, up to a `;`, `,` or the end. What is left out holds no `host=` or `proto=`
// (Spring searches the whole value for them) and no lone `"`, which would make a quote-aware parser
// read the pairs kept otherwise. Any other spelling stays in the key.
const FOR_PAIR = /(^|[;,])[ \t]*for=(?:[\w.:[\]-]*|"[\w.:[\]-]*")[ \t]*(?=[;,]|$)/gi
/** A Forwarded value without the client addresses of its `for=` pairs, which each client has its own of; its separators kept. */
const withoutFor = (v: string): string => v.replace(FOR_PAIR, '$1')

/**
 * A Host (or a URL's host) as keys, invalidation and purges hold it: the host as routing compares
 * it (lower case, no trailing dot: `API.example.com.` is `api.example.com`), then its port unless
 * `:80` or `:443` or empty.
 */
export function normalizeHost (host: string | string[] | undefined): string {
  if (host === undefined) return ''
  const h = String(host)
  const colon = h.lastIndexOf(':')
  const port = colon > h.lastIndexOf(']') ? h.slice(colon + 1) : ''
  const name = routingHost(h)
  return port === '' || port === '80' || port === '443' ? name : `${name}:${port}`
}

interface QueryFilter {
  readonly include: ReadonlySet<string> | undefined
  readonly ignore: ReadonlySet<string>
  readonly strict: boolean
  readonly lookalikes: ReadonlySet<string> | undefined
  /** The longest raw name that may decode to an included or ignored one (see compileQuery). */
  readonly longest: number
}

const ESCAPE = /%[\da-f]{2}/i

/**
 * A parameter's (or cookie's) name as upstreams read it: percent-decoded, `+` a space, a malformed
 * escape kept as sent (as Node's and most parsers do). By hand: querystring.unescape's
 * decodeURIComponent throws on a malformed escape, ~10 µs each (thousands of `%a` in 16 KB).
 */
function decodedName (raw: string): string {
  if (!raw.includes('+') && !(raw.includes('%') && ESCAPE.test(raw))) return raw
  let out = ''
  let bytes: number[] | undefined
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    const hi = c === 37 ? hexDigit(raw.charCodeAt(i + 1)) : -1
    const lo = hi === -1 ? -1 : hexDigit(raw.charCodeAt(i + 2))
    if (lo !== -1) { (bytes ??= []).push(hi * 16 + lo); i += 2; continue }
    // A run of escapes is UTF-8 (an invalid sequence as U+FFFD, as decoders read it).
    if (bytes !== undefined) { out += Buffer.from(bytes).toString(); bytes = undefined }
    out += c === 43 ? ' ' : raw.charAt(i)
  }
  return bytes === undefined ? out : out + Buffer.from(bytes).toString()
}

/** A hex digit's value, -1 for another character (NaN past the end included). */
function hexDigit (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  const l = c | 32
  return l >= 97 && l <= 102 ? l - 87 : -1
}

/** PHP's name for a variable: `.`, space and `[` (one not closed, PHP 8) as `_`; `user.id` is `user_id`. */
const phpName = (name: string): string => name.replace(/[. []/g, '_')

/**
 * The names parsers may read a decoded name as, folded to compare: lower case (ASP.NET), cut at a
 * NUL and leading spaces dropped (PHP); as it is, before its first `[` (qs, Rack and PHP read
 * `id[]=2` and `id[x]=2` as `id`), and each in PHP's form.
 */
function readAs (name: string): string[] {
  const nul = name.indexOf('\0')
  const n = (nul === -1 ? name : name.slice(0, nul)).trimStart().toLowerCase()
  const bracket = n.indexOf('[')
  const base = bracket === -1 ? n : n.slice(0, bracket)
  return [n, base, phpName(n), phpName(base)]
}

/**
 * The parameters kept, sorted by name as decoded; include and ignore compare names decoded (`%69d` is `id`),
 * as the upstream reads them. `;` is a separator to Rack 2, older Python and some Java servers:
 * a kept parameter holding one keeps the order sent (`b=2&a=1;b=3` is b=3 there, `a=1;b=3&b=2`
 * b=2: sorted, they would be one entry). Strict, a parameter left out that the upstream may take
 * for one kept makes the query ambiguous (undefined), for a response keyed without it could
 * depend on it: a name that shares a form with an included one (another case, an array, PHP's
 * mangling, a NUL: see readAs), or a `;` (`x=1;id=2` is `id=2` there).
 */
function sortedQuery (query: string, filter: QueryFilter | undefined): string | undefined {
  if (tooManyParameters(query)) return undefined
  const pairs: Array<{ name: string, pair: string }> = []
  let encoded = false
  let semicolon = false
  for (const pair of query.slice(1).split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (filter !== undefined) {
      const { include, ignore, strict, lookalikes, longest } = filter
      // Too long to decode to a listed name: compared raw (it is none either way), unless its forms are.
      const decoded = name.length > longest && lookalikes === undefined ? name : decodedName(name)
      if ((include !== undefined && !include.has(decoded)) || ignore.has(decoded)) {
        if (strict && (pair.includes(';') || (lookalikes !== undefined && readAs(decoded).some(n => lookalikes.has(n))))) return undefined
        continue
      }
    }
    pairs.push({ name, pair })
    encoded ||= name.includes('%') || name.includes('+')
    semicolon ||= pair.includes(';')
  }
  if (semicolon) return pairs.map(p => p.pair).join('&')
  // By name only, a stable sort: a=1&b=2 and b=2&a=1 are one entry, but sort=name&sort=-date and
  // sort=-date&sort=name stay two (the values of one name are a list, whose order may mean something).
  // The name as upstreams read it (decodedName): %61=1&a=2 is a=1 to a first-wins parser, a=2&%61=1
  // a=2, so they stay two. Sorted rather than left uncached: such a query is still cached, and one
  // without `%` or `+` in its names, nearly all, decodes nothing. Not handled: names one to some
  // parsers only (ASP.NET's A and a, PHP's a.b and a_b), whose two orders stay one entry; folding
  // them would cost a string per camelCase name on every request.
  if (encoded) for (const p of pairs) p.name = decodedName(p.name)
  return pairs.sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0).map(p => p.pair).join('&')
}

// A key sorts (and may decode) every parameter on every request: 4,000 in a 16 KB query took 4 ms.
// Past this many the request skips the cache, as with an ambiguous query: no API needs that many.
export const MAX_PARAMETERS = 256

/**
 * Whether `query` has more than MAX_PARAMETERS parameters, counted without splitting it. A URL
 * purge of such a query is refused: no request with it is cached, and it has no key.
 */
export function tooManyParameters (query: string): boolean {
  let at = 0
  for (let n = 0; n < MAX_PARAMETERS; n++) {
    at = query.indexOf('&', at) + 1
    if (at === 0) return false
  }
  return true
}

/** A (lower-case) header name as CGI, WSGI, Rack and PHP servers read it: `_` as `-` (X_Preview is HTTP_X_PREVIEW, as X-Preview is). */
export const dashedForm = (name: string): string => name.includes('_') ? name.replaceAll('_', '-') : name

/**
 * Header names with `_` a spelling check compares per request at most: a request with more (no
 * client needs them) is taken for one holding another spelling, the safe side, at a bounded cost.
 */
export const MAX_UNDERSCORED = 32

/**
 * Whether the headers going upstream hold a `bypass` or `keyed` header (lower case) in a spelling
 * those servers read as it but a lookup by name misses: `X_Preview` for x-preview, `X-Tenant` for
 * x_tenant. A keyed name as configured is in the key. Only names with `_` are compared, in the
 * dashed form (as the gateway finds forwarding headers' `_` spellings): the others cost the test
 * for a `_`. undefined when there are no names.
 */
export function compileSpellingBypass (bypass: readonly string[], keyed: readonly string[]): ((headers: Headers) => boolean) | undefined {
  const names = [...bypass, ...keyed]
  if (names.length === 0) return undefined
  const inKey = new Set(keyed)
  const dashed = new Set(names.map(dashedForm))
  // A name configured with `_`: its dashed spelling, the one most clients send, has none to notice.
  const plain = [...dashed].filter(n => !names.includes(n))
  return headers => {
    for (const name of plain) if (headers[name] !== undefined) return true
    let underscored = 0
    for (const name in headers) {
      if (!name.includes('_')) continue
      if (++underscored > MAX_UNDERSCORED || (!inKey.has(name) && dashed.has(name.replaceAll('_', '-')))) return true
    }
    return false
  }
}

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\]/g

/**
 * Cookie names a bypass check reads per request at most (browsers keep 180 per domain): a
 * header with more, once it may hold a bypass name, is taken for one that does, the safe side, at
 * a bounded cost.
 */
export const MAX_COOKIE_NAMES = 256

/** Whitespace and control characters, in a character class: those trimmable and whitespace splits at. */
const WS = '\\0-\\x20\\x7f\\x85\\xa0'

/**
 * Whether a Cookie header holds one of `names` as servers read cookie names: split at `;` and also
 * `,` (a separator some accept), each pair also at whitespace (Python's SimpleCookie, in aiohttp,
 * Bottle and CherryPy, ends a pair there: `a=1 session=x` holds `session`), trimmed (`session =x`
 * is `session` to the cookie package, Express and Django), percent-decoded with `+` a space (PHP,
 * Rack), in any case (ASP.NET Core), without a `=` (PHP), and in PHP's forms (readAs:
 * `session[x]` is `session`, `my.session` and `my session` are `my_session`). A near match skips
 * the cache too: the safe side. undefined when there are no names.
 */
export function compileCookieBypass (names: readonly string[]): ((cookie: string) => boolean) | undefined {
  if (names.length === 0) return undefined
  const forms = new Set(names.flatMap(readAs))
  // None of the forms in the header, in any case (a `_` may be a `.`, a space or a `[`), and no
  // `%` or `+` in a name: no match. The common case costs this scan, as the regex before did.
  const spelled = [...forms].map(f => f.replace(REGEX_SPECIAL, '\\$&').replaceAll('_', '[_. \\[]'))
  const maybe = new RegExp(`(?:^|[;,${WS}])[^=;,${WS}]*[%+]|${spelled.join('|')}`, 'i')
  const named = (n: string): boolean => {
    const t = trimmed(n)
    return readAs(n).some(f => forms.has(f)) || (t !== n && readAs(t).some(f => forms.has(f)))
  }
  const matches = (raw: string): boolean => {
    const decoded = decodedName(raw)
    return named(raw) || (decoded !== raw && named(decoded))
  }
  return cookie => {
    if (!maybe.test(cookie)) return false
    let left = MAX_COOKIE_NAMES
    for (let start = 0; start <= cookie.length;) {
      const end = pairEnd(cookie, start)
      const pair = cookie.slice(start, end)
      start = end + 1
      const eq = pair.indexOf('=')
      if (--left < 0 || matches(eq === -1 ? pair : pair.slice(0, eq))) return true
      // Its whitespace-separated tokens' names too (the name as a whole keeps PHP's `my session`).
      const t = trimmed(pair)
      for (let i = 0; i < t.length;) {
        let j = i
        while (j < t.length && !trimmable(t.charCodeAt(j))) j++
        if (i === 0 && j === t.length) break // a single token: the pair, read above
        const token = t.slice(i, j)
        const teq = token.indexOf('=')
        if (--left < 0 || matches(teq === -1 ? token : token.slice(0, teq))) return true
        for (i = j; i < t.length && trimmable(t.charCodeAt(i));) i++
      }
    }
    return false
  }
}

/** Where the cookie pair from `start` ends: at the next `;` or `,`, or the end. */
function pairEnd (cookie: string, start: number): number {
  let i = start
  while (i < cookie.length) {
    const c = cookie.charCodeAt(i)
    if (c === 59 || c === 44) break
    i++
  }
  return i
}

/** Whitespace and control characters as servers trim names (Python's strip takes \x85 and \xa0 too). */
const trimmable = (c: number): boolean => c <= 32 || c === 127 || c === 0x85 || c === 0xa0

/** `s` without trimmable characters at either end; by index, not a regex (one of `\s+$` scans a run of spaces from each of them). */
function trimmed (s: string): string {
  let start = 0
  let end = s.length
  while (start < end && trimmable(s.charCodeAt(start))) start++
  while (end > start && trimmable(s.charCodeAt(end - 1))) end--
  return start === 0 && end === s.length ? s : s.slice(start, end)
}
