import { splitTemplate } from '../../src/index.ts'

// `\:` and `\*` are a literal `:` and `*` (`/wiki/Special\:Search`): a backslash is never part of a URI.
const ESCAPED = /\\([:*])/
const ESCAPE_HINT = '(a literal ":" or "*" is written "\\:" or "\\*")'
// An IP literal host (`http://[2001:db8::a]:8080/`) is literal text: its colons start no param names.
const IP_LITERAL_AUTHORITY = /^(?:[A-Za-z][A-Za-z0-9+.-]*:)?\/\/[^/?#[\]]*\[[^\]/?#]*\]/

// What a URI holds as is (RFC 3986 2.2, 2.3: unreserved and reserved characters but `[` and `]`,
// which only an IP literal host may hold; `%` of a percent-encoding): anything else is encoded.
const NOT_IN_URI = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/?%]|%(?![0-9A-Fa-f]{2})/
const NOT_IN_URI_ALL = new RegExp(NOT_IN_URI.source, 'g')
const hex = (byte: number) => '%' + (byte < 16 ? '0' : '') + byte.toString(16).toUpperCase()

/**
 * `text` from the request (a param, the query) as a URI may hold it: characters RFC 3986 does not
 * allow there percent-encoded (`"` as %22); a text without any (the usual case) as it is. Node reads
 * the request target's bytes as Latin-1 characters: each is encoded as the byte it was.
 */
export function uriSafe (text: string): string {
  if (!NOT_IN_URI.test(text)) return text
  return text.replace(NOT_IN_URI_ALL, c => {
    const code = c.charCodeAt(0)
    return code < 0x100 ? hex(code) : Array.from(Buffer.from(c, 'utf8'), hex).join('')
  })
}

/**
 * Splits `template` as splitTemplate does (literal text at even indexes, names at odd ones), `\:`,
 * `\*` and an IP literal host kept as literal text.
 */
function split (template: string, available: readonly string[]): string[] | string {
  const host = IP_LITERAL_AUTHORITY.exec(template)?.[0] ?? ''
  const pieces = template.slice(host.length).split(ESCAPED)
  const parts = [host]
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i] as string
    if (i % 2 === 1) { parts[parts.length - 1] += piece; continue }
    const found = splitTemplate(piece, available, 'the route\'s match.path')
    if (typeof found === 'string') return `${found} ${ESCAPE_HINT}`
    parts[parts.length - 1] += found[0] as string
    for (let j = 1; j < found.length; j++) parts.push(found[j] as string)
  }
  return parts
}

/**
 * Compiles a Location template (`https://example.com/v2/:id/*`) into a function of the route's
 * params, or returns what is wrong with it. Params are inserted as matched (still percent-encoded),
 * with what a URI may not hold encoded (uriSafe).
 */
export function compileTemplate (template: string, available: readonly string[]): ((params: Readonly<Record<string, string>>) => string) | string {
  // `:` followed by a digit (a port) or `/` (after the scheme) is literal: not a param name.
  const parts = split(template, available)
  if (typeof parts === 'string') return parts
  const names = parts.filter((_, i) => i % 2 === 1)
  if (names.length === 0) return () => parts[0] as string
  return params => {
    let out = parts[0] as string
    for (let i = 0; i < names.length; i++) {
      const value = params[names[i] as string] ?? ''
      // An empty "*" takes its slash with it (`/v2/*` for `/old` is `/v2`).
      if (value === '' && out.endsWith('/') && out.length > 1) out = out.slice(0, -1)
      out += uriSafe(value) + (parts[2 * i + 2] as string)
    }
    return out
  }
}
