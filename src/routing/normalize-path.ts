// Unreserved characters (RFC 3986 2.3) are the only ones whose percent-encoding is decoded in the
// path forwarded: the escape of a reserved character is another address to the RFC (6.2.2.2), and to
// backends that read `%2B` as a space, or check a signature over the path as sent.
const UNRESERVED = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1

// Anything that could need work: a %, a backslash, `;`, a byte outside printable ASCII (NUL; raw
// non-ASCII bytes, which HTTP/2 lets through), `//`, a segment starting with `.`, no leading slash.
const NEEDS_WORK = /[^!-$&-:<-[\]-~]|\/\/|\/\.|^(?!\/)/
const HEX = /^[0-9A-Fa-f]{2}$/

/**
 * What may follow a UTF-8 lead byte (0xC2 to 0xF4; any other byte of 0x80 or more cannot start a
 * character): how many continuation bytes, and the range of the first one (RFC 3629 4), which
 * excludes overlong forms, surrogates and code points past U+10FFFF. Each later one is 0x80 to 0xBF.
 */
const UTF8_LEAD: ReadonlyArray<readonly [number, number, number] | undefined> = Array.from({ length: 256 }, (_, b) =>
  b < 0xc2 || b > 0xf4 ? undefined
    : b < 0xe0 ? [1, 0x80, 0xbf]
      : b === 0xe0 ? [2, 0xa0, 0xbf]
        : b === 0xed ? [2, 0x80, 0x9f]
          : b < 0xf0 ? [2, 0x80, 0xbf]
            : b === 0xf0 ? [3, 0x90, 0xbf]
              : b === 0xf4 ? [3, 0x80, 0x8f]
                : [3, 0x80, 0xbf])

/**
 * The canonical form of a request path, which is what is forwarded (routes match its routingForm):
 * unreserved percent-escapes decoded, other escapes upper-cased, dot segments removed, duplicate
 * slashes collapsed. Returns undefined for paths that must be rejected (400): encoded `/` or `\`,
 * backslash, NUL, bad escapes, escapes that do not decode as UTF-8 (Fastify's router refuses plain
 * requests with them; upgrades do not pass through it), raw bytes outside printable ASCII (Node's
 * HTTP/1 parser refuses them; HTTP/2's does not: `/x\xC0\xAF..` would reach an upstream whose decoder
 * takes overlong forms), and `;` raw or encoded: servers that strip
 * path parameters (Tomcat, Jetty, Spring) would read `/admin;x/y` or `/public/..;/admin` as a path
 * no route matched.
 */
export function normalizePath (path: string): string | undefined {
  if (!NEEDS_WORK.test(path)) return path
  if (path.charCodeAt(0) !== 47) return undefined

  let decoded = ''
  // Within an escaped UTF-8 character: continuation bytes still due, and the range of the next one.
  let due = 0
  let lo = 0
  let hi = 0
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string
    if (ch === '\\' || ch === ';') return undefined
    if (ch !== '%') {
      const c = ch.charCodeAt(0)
      if (c < 0x21 || c > 0x7e) return undefined
      if (due > 0) return undefined
      decoded += ch
      continue
    }
    const hex = path.slice(i + 1, i + 3)
    if (!HEX.test(hex)) return undefined
    const code = parseInt(hex, 16)
    if (code === 0x2f || code === 0x5c || code === 0 || code === 0x3b) return undefined
    if (due > 0) {
      if (code < lo || code > hi) return undefined
      due--
      lo = 0x80
      hi = 0xbf
    } else if (code >= 0x80) {
      const lead = UTF8_LEAD[code]
      if (lead === undefined) return undefined
      due = lead[0]
      lo = lead[1]
      hi = lead[2]
    }
    decoded += code < 128 && UNRESERVED[code] === 1 ? String.fromCharCode(code) : '%' + hex.toUpperCase()
    i += 2
  }
  if (due > 0) return undefined

  const out: string[] = []
  const segments = decoded.split('/')
  for (let i = 1; i < segments.length; i++) {
    const seg = segments[i] as string
    if (seg === '' || seg === '.') continue
    if (seg === '..') { out.pop(); continue }
    out.push(seg)
  }
  const last = segments[segments.length - 1]
  const trailing = out.length > 0 && (last === '' || last === '.' || last === '..')
  return '/' + out.join('/') + (trailing ? '/' : '')
}

// The other characters a path segment holds as they are (RFC 3986 3.3 pchar: sub-delims but `;`,
// `:` and `@`), by their upper-case escapes, as normalizePath leaves them.
const PCHAR_ESCAPE = /%(2[146-9A-C]|3[AD]|40)/g
const PCHAR_ESCAPES: Readonly<Record<string, string>> = Object.fromEntries(
  [..."!$&'()*+,=:@"].map(c => [c.charCodeAt(0).toString(16).toUpperCase(), c]))

/**
 * What routes match for a normalized path: its escapes of ``!$&'()*+,=:@`` decoded too. A backend
 * that decodes the path reads `/v1/admin%3Areset` as `/v1/admin:reset`: the route written so, and its
 * plugins, must take it. The path forwarded keeps the escapes as sent (normalizePath). Segments
 * stay where they are (no `/` is decoded), so params are found by position in either form.
 */
export function routingForm (path: string): string {
  if (path.indexOf('%') === -1) return path
  return path.replace(PCHAR_ESCAPE, (escape, hex: string) => PCHAR_ESCAPES[hex] ?? escape)
}
