import { isIPv6 } from 'node:net'
import { domainToASCII } from 'node:url'
import { splitTemplate } from '../../src/index.ts'

// `\:` and `\*` are a literal `:` and `*` (`/wiki/Special\:Search`): a backslash is never part of a URI.
const ESCAPED = /\\([:*])/
const ESCAPED_ALL = new RegExp(ESCAPED.source, 'g')
const ESCAPE_HINT = '(a literal ":" or "*" is written "\\:" or "\\*")'
// The scheme and authority of an absolute or `//` template (`https://api.example.com:8443`).
const ORIGIN = /^(?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/[^/?#]*/
// A param or "*" not escaped; an IP literal host's colons (`[2001:db8::a]`) are none.
const PARAM = /(?<!\\)(?::[A-Za-z_][A-Za-z0-9_]*|\*)/
const IP_LITERAL_ALL = /\[[^\]]*\]/g
// A host name as RFC 3986 3.2.2 allows it (reg-name).
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/

// What a URI holds as is (RFC 3986 2.2, 2.3: unreserved and reserved characters but `[` and `]`,
// which only an IP literal host may hold; `%` of a percent-encoding): anything else is encoded.
// Per code point (`u`): a character outside the BMP is encoded whole.
const NOT_IN_URI = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})/u
const NOT_IN_URI_ALL = new RegExp(NOT_IN_URI.source, 'gu')
const hex = (byte: number) => '%' + (byte < 16 ? '0' : '') + byte.toString(16).toUpperCase()
const utf8 = (c: string) => Array.from(Buffer.from(c, 'utf8'), hex).join('')

/**
 * `text` from the request (a param, the query) as a URI may hold it: characters RFC 3986 does not
 * allow there percent-encoded (`"` as %22); a text without any (the usual case) as it is. Node reads
 * the request target's bytes as Latin-1 characters: each is encoded as the byte it was.
 */
export function uriSafe (text: string): string {
  if (!NOT_IN_URI.test(text)) return text
  return text.replace(NOT_IN_URI_ALL, c => {
    const code = c.charCodeAt(0)
    return code < 0x100 ? hex(code) : utf8(c)
  })
}

// In a query or fragment these split a parameter (`&admin=1`) or read as a space (`+`): a param's
// value landing there must stay one value. uriSafe encodes `#` everywhere.
const QUERY_DELIMITERS = /[&=+]/g

/** A param's value in the template's query or fragment: uriSafe, and its query delimiters encoded. */
const querySafe = (text: string): string => uriSafe(text).replace(QUERY_DELIMITERS, c => hex(c.charCodeAt(0)))

/** Literal text of the template as a URI may hold it: the rest UTF-8 percent-encoded (`é` as %C3%A9). */
const literalSafe = (text: string): string => text.replace(NOT_IN_URI_ALL, utf8)

/** A host name as a URI holds it (`例え.jp` as `xn--r8jz45g.jp`), or '' for none valid. */
function asciiHost (host: string): string {
  if (REG_NAME.test(host)) return host
  const ascii = domainToASCII(host)
  return REG_NAME.test(ascii) ? ascii : ''
}

/**
 * The scheme and authority an absolute or `//` template starts with, as a Location may hold them
 * (`https://例え.jp` as `https://xn--r8jz45g.jp`; '' for a path), and how long they are in the
 * template, or what is wrong with them. They hold no param or "*": a request may not choose the host.
 */
export function compileOrigin (template: string): { text: string, length: number } | string {
  const raw = ORIGIN.exec(template)?.[0]
  if (raw === undefined) return { text: '', length: 0 }
  const param = PARAM.exec(raw.replace(IP_LITERAL_ALL, ''))?.[0]
  if (param !== undefined) return `has "${param}" before its path: a request would choose the host it is redirected to, so params and "*" may only come after the host ${ESCAPE_HINT}`
  const start = raw.indexOf('//') + 2
  const authority = raw.slice(start).replace(ESCAPED_ALL, '$1')
  // Browsers end the host at a "\" as at "/": `https://good.example\@evil.com` goes to evil.com once encoded.
  if (authority.includes('\\')) return 'has "\\" before its path: browsers read it as "/" and end the host there, so the Location would not go where this text reads'
  const at = authority.lastIndexOf('@') + 1
  const hostPort = authority.slice(at)
  const close = hostPort.startsWith('[') ? hostPort.indexOf(']') + 1 : 0
  const colon = hostPort.indexOf(':', close)
  const host = hostPort.slice(0, colon < 0 ? hostPort.length : colon)
  const port = hostPort.slice(host.length)
  if (host === '') return 'has no host after "//"'
  if (!/^(?::\d*)?$/.test(port)) return `has "${port.slice(1)}" as its port, which is not a number`
  const name = host.startsWith('[') ? (host.endsWith(']') && isIPv6(host.slice(1, -1)) ? host : '') : asciiHost(host)
  if (name === '') return `has "${host}" as its host, which is no valid host name`
  return { text: raw.slice(0, start) + literalSafe(authority.slice(0, at)) + name + port, length: raw.length }
}

/**
 * Splits `template` as splitTemplate does (literal text at even indexes, names at odd ones), `\:`
 * and `\*` kept as literal text, the literal text as a URI may hold it.
 */
function split (template: string, available: readonly string[]): string[] | string {
  const pieces = template.split(ESCAPED)
  const parts = ['']
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i] as string
    if (i % 2 === 1) { parts[parts.length - 1] += piece; continue }
    const found = splitTemplate(piece, available, 'the route\'s match.path')
    if (typeof found === 'string') return `${found} ${ESCAPE_HINT}`
    parts[parts.length - 1] += found[0] as string
    for (let j = 1; j < found.length; j++) parts.push(found[j] as string)
  }
  return parts.map((part, i) => i % 2 === 0 ? literalSafe(part) : part)
}

/**
 * A path (and query) or fragment template as a function of the route's params, or what is wrong
 * with it. Each param is encoded as where it lands asks: querySafe after the template's `?` or in a
 * `fragment`, uriSafe in the path; decided here, once.
 */
function compileParts (template: string, available: readonly string[], fragment: boolean): ((params: Readonly<Record<string, string>>) => string) | string {
  const parts = split(template, available)
  if (typeof parts === 'string') return parts
  const names = parts.filter((_, i) => i % 2 === 1)
  if (names.length === 0) return () => parts[0] as string
  // The literal part holding the template's "?": params after it are in the query.
  const query = parts.findIndex((part, i) => i % 2 === 0 && part.includes('?'))
  const safe = names.map((_, i) => fragment || (query !== -1 && query <= 2 * i) ? querySafe : uriSafe)
  return params => {
    let out = parts[0] as string
    for (let i = 0; i < names.length; i++) {
      const value = params[names[i] as string] ?? ''
      // An empty "*" takes its slash with it (`/v2/*` for `/old` is `/v2`).
      if (value === '' && out.endsWith('/') && out.length > 1) out = out.slice(0, -1)
      out += (safe[i] as (text: string) => string)(value) + (parts[2 * i + 2] as string)
    }
    return out
  }
}

/**
 * Compiles a Location template (`https://example.com/v2/:id/*#top`) into a function of the route's
 * params and the query to add (without its `?`; '' for none), or returns what is wrong with it.
 * Params and the query are inserted as matched (still percent-encoded), with what a URI may not
 * hold encoded (uriSafe), and a param's `&`, `=` and `+` too in the template's query or fragment
 * (querySafe); the query goes before the #fragment (after it, it would be part of it).
 */
export function compileTemplate (template: string, available: readonly string[]): ((params: Readonly<Record<string, string>>, query: string) => string) | string {
  const origin = compileOrigin(template)
  if (typeof origin === 'string') return origin
  const hash = template.indexOf('#')
  const base = hash < 0 ? template : template.slice(0, hash)
  const path = compileParts(base.slice(origin.length), available, false)
  if (typeof path === 'string') return path
  const fragment = hash < 0 ? undefined : compileParts(template.slice(hash + 1), available, true)
  if (typeof fragment === 'string') return fragment
  const joiner = base.includes('?') ? '&' : '?'
  return (params, query) => origin.text + path(params) + (query === '' ? '' : joiner + uriSafe(query)) + (fragment === undefined ? '' : '#' + fragment(params))
}
