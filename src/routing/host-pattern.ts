import { isIPv6 } from 'node:net'

/**
 * A valid Host (RFC 9112 3.2), or an absolute-form target's authority: a name or IPv4 address, or
 * an IPv6 one in brackets (what is in them an IPv6 address: `[.]` is none), then maybe a port up to 65535 (RFC 3986 3.2.2, whose empty port is
 * allowed; a larger one went on as X-Forwarded-Port). A name's labels are letters, digits, `-` and
 * `_`, none empty; one trailing dot is allowed. No userinfo, path, query or space: an upstream's URL
 * parser would read another host in those. Group 1: the host.
 */
const HOST = /^(\[[0-9A-Fa-f:.]+\]|(?=[^:]{1,253}(?::|$))[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?)(?::(?:[0-9]{0,4}|[0-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?$/

/** Whether `value` is a valid Host (see HOST): checked on every request, so a test, no match array. */
export function isValidHost (value: string): boolean {
  return HOST.test(value) && (value.charCodeAt(0) !== 91 /* [ */ || isIPv6(value.slice(1, value.indexOf(']'))))
}

/** The host of a valid Host value without its port (`API.example.com` of `API.example.com:8080`), else undefined. */
export function hostOf (value: string): string | undefined {
  return isValidHost(value) ? HOST.exec(value)?.[1] : undefined
}

/** Lower-cased host without port or trailing dot: `API.Example.com.:8080` → `api.example.com`. */
export function normalizeHost (host: string | undefined): string {
  if (host === undefined || host === '') return ''
  let h = host
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']')
    h = end === -1 ? h : h.slice(0, end + 1)
  } else {
    const colon = h.indexOf(':')
    if (colon !== -1) h = h.slice(0, colon)
  }
  if (h.endsWith('.')) h = h.slice(0, -1)
  return h.toLowerCase()
}

/**
 * Whether two authorities (`host[:port]`) name the same origin (RFC 9113 8.3.1, Host beside
 * :authority): the host compared as routing does (case, a trailing dot), the port with the
 * scheme's default when none is written.
 */
export function sameAuthority (a: string, b: string, scheme: string | undefined): boolean {
  if (a === b) return true
  const port = scheme === 'http' ? '80' : '443'
  return normalizeHost(a) === normalizeHost(b) && (portOf(a) ?? port) === (portOf(b) ?? port)
}

/** The port written in `host[:port]`, if any (an empty one is the default: RFC 3986 3.2.3). */
function portOf (host: string): string | undefined {
  const colon = host.lastIndexOf(':')
  if (colon === -1 || colon < host.lastIndexOf(']') || colon === host.length - 1) return undefined
  return host.slice(colon + 1)
}

export type HostPattern = { kind: 'exact', host: string } | { kind: 'wildcard', suffix: string }

const WILDCARD_ONLY = 'only a leading "*." wildcard is allowed'
const NAME = 'letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed)'
const NOT_A_HOST = `is not a host name (${NAME}), an IPv4 address or an IPv6 one in brackets`
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//

/**
 * `api.example.com` is exact; `*.example.com` matches any sub-domain (not example.com itself).
 * Both in the grammar a request's Host is held to (HOST): anything else could never match, and
 * `*.` alone would match every host.
 */
export function parseHostPattern (pattern: string): HostPattern | string {
  const scheme = SCHEME.exec(pattern)
  if (scheme !== null) return `write the host name only, without "${scheme[0]}"`
  const p = pattern.toLowerCase()
  if (p.startsWith('*.')) {
    const domain = p.slice(2)
    if (domain.includes('*')) return WILDCARD_ONLY
    if (domain === '') return 'a wildcard needs a domain after "*." (as in *.example.com)'
    const host = domain.startsWith('[') ? undefined : hostOf(domain)
    if (host === undefined) return `after "*." comes a domain name (${NAME})`
    if (host !== domain) return 'must not include a port'
    // One trailing dot, as for exact names: request hosts are compared without it.
    return { kind: 'wildcard', suffix: '.' + normalizeHost(domain) }
  }
  if (p.includes('*')) return WILDCARD_ONLY
  const host = hostOf(p)
  if (host === undefined) return NOT_A_HOST
  return host === p ? { kind: 'exact', host: normalizeHost(p) } : 'must not include a port'
}

/**
 * Why a route's hostHeader is no valid Host (see HOST), or undefined: the upstream's HTTP client
 * would refuse anything else (a scheme, a path, CR LF) on every request.
 */
export function hostHeaderProblem (value: string): string | undefined {
  if (isValidHost(value)) return undefined
  const scheme = SCHEME.exec(value)
  return scheme !== null ? `write the host[:port] only, without "${scheme[0]}"` : `is not host[:port]: a host name (${NAME}), an IPv4 address or an IPv6 one in brackets, then maybe a port`
}

/** Whether `host` (already normalized) is one a pattern matches. */
export function hostMatches (pattern: HostPattern, host: string): boolean {
  return pattern.kind === 'exact' ? pattern.host === host : underSuffix(host, pattern.suffix)
}

/**
 * Whether `host` is a sub-domain under a wildcard's `suffix` (`.example.com`): whole labels only, so
 * not `.example.com` itself, nor `a..example.com`, whose label before the suffix is empty.
 */
export function underSuffix (host: string, suffix: string): boolean {
  return host.length > suffix.length && host.endsWith(suffix) && host.charCodeAt(host.length - suffix.length - 1) !== 46 /* . */
}
