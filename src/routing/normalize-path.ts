// Unreserved characters (RFC 3986 2.3) are the only ones whose percent-encoding is decoded.
const UNRESERVED = new Uint8Array(128)
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1

// Anything that could need work: a %, a backslash, NUL, `;`, `//`, a segment starting with `.`, or no leading slash.
const NEEDS_WORK = /[%\\\0;]|\/\/|\/\.|^(?!\/)/
const HEX = /^[0-9A-Fa-f]{2}$/

/**
 * The canonical form of a request path, which is both what routes match and what is forwarded:
 * unreserved percent-escapes decoded, other escapes upper-cased, dot segments removed, duplicate
 * slashes collapsed. Returns undefined for paths that must be rejected (400): encoded `/` or `\`,
 * backslash, NUL, bad escapes, and `;` raw or encoded: servers that strip path parameters (Tomcat,
 * Jetty, Spring) would read `/admin;x/y` or `/public/..;/admin` as a path no route matched.
 */
export function normalizePath (path: string): string | undefined {
  if (!NEEDS_WORK.test(path)) return path
  if (path.charCodeAt(0) !== 47) return undefined

  let decoded = ''
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string
    if (ch === '\\' || ch === '\0' || ch === ';') return undefined
    if (ch !== '%') { decoded += ch; continue }
    const hex = path.slice(i + 1, i + 3)
    if (!HEX.test(hex)) return undefined
    const code = parseInt(hex, 16)
    if (code === 0x2f || code === 0x5c || code === 0 || code === 0x3b) return undefined
    decoded += code < 128 && UNRESERVED[code] === 1 ? String.fromCharCode(code) : '%' + hex.toUpperCase()
    i += 2
  }

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
