import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { TOKEN, type HeaderMap, type PluginConfigProblem } from '../../src/index.ts'

// RFC 9110 token.
const HeaderName = Type.String({ pattern: TOKEN, errorMessage: 'must be a valid header name' })
// Hop-by-hop headers belong to each connection, not to the message: the proxy sets them itself
// (HTTP2-Settings, an h2c upgrade's, too: src/proxy/hop-by-hop.ts).
// Content-Length frames the message: set to anything but the body's length, the peer reads the
// wrong bytes (a body cut short, a hang, or body bytes read as the next message). The gateway
// writes it, or Node and undici do.
const caseless = (s: string) => s.replace(/[a-z]/g, c => `[${c}${c.toUpperCase()}]`)
const NOT_SETTABLE = ['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'proxy', 'http2-settings', 'content-length'].map(caseless).join('|')
const SETTABLE = `^(?!(?:${NOT_SETTABLE})$)(?!${caseless('proxy-')})${TOKEN.slice(1)}`
/** A header name a config may set: not hop-by-hop or framing (nor a pseudo-header, which is no token). */
export const SettableName = Type.String({ pattern: SETTABLE, errorMessage: 'must be a valid header name, and not a hop-by-hop or framing header (Connection, Transfer-Encoding, Content-Length, Proxy-*...)' })
/** A header value: any text but line breaks and other control characters (tab aside); sent as its UTF-8 bytes (headerBytes). */
export const HeaderValue = Type.String({ pattern: '^[^\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f]*$', errorMessage: 'must be a valid header value (no line breaks or control characters)' })

/**
 * A config's header value as the bytes it is written in (UTF-8), as nginx sends its config's, and as
 * a body is sent: header values hold bytes, one char each (latin1), which Node and undici write back
 * as they are. `é` would go out as the one byte E9, and `✓` (past FF) make Node throw.
 */
export const headerBytes = (value: string): string => Buffer.from(value, 'utf8').toString('latin1')
/** An object keyed by header names a config may set: a bad name is reported on the key itself. */
export const ByHeaderName = <T extends TSchema>(value: T, description: string) =>
  Type.Record(Type.String({ pattern: SETTABLE }), value, { additionalProperties: false, errorMessage: 'is not a valid header name, or is a hop-by-hop or framing header (Connection, Transfer-Encoding, Content-Length, Proxy-*...)', description })

/** Header edits, applied in this order: remove, rename, set. Names are case-insensitive. */
export const HeaderEditsSchema = Type.Object({
  remove: Type.Optional(Type.Array(HeaderName, { description: 'Headers to drop.' })),
  rename: Type.Optional(ByHeaderName(SettableName, 'from-name: to-name; the value is kept.')),
  set: Type.Optional(ByHeaderName(HeaderValue, 'name: value; replaces any existing value.'))
}, { additionalProperties: false })

export type HeaderEdits = Static<typeof HeaderEditsSchema>

/**
 * Keys of `map` (under the config's `key`) naming a header an earlier key names in another case
 * (`X-A` and `x-a`): one header, so only one of them would apply (the last set, the first rename), without a word.
 */
export function caseTwins (map: Readonly<Record<string, unknown>> | undefined, key: string): PluginConfigProblem[] {
  const first = new Map<string, string>()
  return Object.keys(map ?? {}).flatMap(name => {
    const earlier = first.get(name.toLowerCase())
    if (earlier === undefined) { first.set(name.toLowerCase(), name); return [] }
    return [{ path: [key, name], message: `"${earlier}" and "${name}" are one header (names are case-insensitive): only one of them would apply; keep one` }]
  })
}

/** The rename and set keys that are one header in two spellings (caseTwins). */
export const headerEditTwins = (edits: HeaderEdits): PluginConfigProblem[] => [...caseTwins(edits.rename, 'rename'), ...caseTwins(edits.set, 'set')]

/**
 * The edits of a top-level request-headers or response-headers a route's entry, replacing it whole,
 * drops (PluginDefinition.replacing): each remove, rename (by its from) and set whose header the
 * route's entry does not name at all. One it names (removed, renamed from or to, set, in any case)
 * the route decided on: no warning. `same`: the form two names of one header share (request headers:
 * `_` as `-`, as the edits treat them).
 */
export function droppedEdits (top: HeaderEdits, route: HeaderEdits, same = (name: string): string => name.toLowerCase()): string[] {
  const named = new Set([...route.remove ?? [], ...Object.entries(route.rename ?? {}).flat(), ...Object.keys(route.set ?? {})].map(same))
  const dropped = (names: readonly string[]) => names.filter(name => !named.has(same(name)))
  const removed = dropped(top.remove ?? [])
  const renamed = Object.entries(top.rename ?? {}).filter(([from]) => !named.has(same(from))).map(([from, to]) => `${from} to ${to}`)
  const set = dropped(Object.keys(top.set ?? {}))
  return [
    ...removed.length === 0 ? [] : [`the top-level remove of ${removed.join(', ')}`],
    ...renamed.length === 0 ? [] : [`the top-level rename of ${renamed.join(', ')}`],
    ...set.length === 0 ? [] : [`the top-level set of ${set.join(', ')}`]
  ]
}

/**
 * Compiles the edits once (at config load) into one function applied per request. `spellings`:
 * the `_` and `-` spellings of every header named (removed, renamed, set) are removed first: a CGI,
 * WSGI or PHP upstream reads `X_User_Id` as X-User-Id, so a client could still send what was
 * removed, or a second value beside the one set. Compared with `_` as `-`: a client's name with `_`
 * against every name given, and, for a name given with `_`, its `-` spelling (a listing of
 * spellings doubles with each `-` of a name).
 */
export function compileHeaderEdits (edits: HeaderEdits, spellings = false): (headers: HeaderMap) => void {
  const rename = Object.entries(edits.rename ?? {}).map(([from, to]) => [from.toLowerCase(), to.toLowerCase()] as const)
  const set = Object.entries(edits.set ?? {}).map(([name, value]) => [name.toLowerCase(), headerBytes(value)] as const)
  const remove = (edits.remove ?? []).map(h => h.toLowerCase())
  const named = [...remove, ...rename.flat(), ...set.map(([name]) => name)]
  const dashed = spellings ? new Set(named.map(n => n.replaceAll('_', '-'))) : undefined
  // `set: { x_tenant: ... }`: the client's X-Tenant is read as the same header.
  const dashes = spellings ? new Set(named.filter(n => n.includes('_')).map(n => n.replaceAll('_', '-'))) : undefined
  // Never a name the config renames from (`rename: { x_a: x-a }` asks for that spelling).
  const renamed = new Set(rename.map(([from]) => from))
  return headers => {
    if (dashed !== undefined) {
      for (const name in headers) {
        const other = name.indexOf('_') !== -1 ? dashed.has(name.replaceAll('_', '-')) : dashes?.has(name) === true
        if (other && !renamed.has(name)) headers[name] = undefined
      }
    }
    for (const name of remove) if (headers[name] !== undefined) headers[name] = undefined
    for (const [from, to] of rename) {
      const value = headers[from]
      if (value === undefined) continue
      headers[from] = undefined
      headers[to] = value
    }
    for (const [name, value] of set) headers[name] = value
  }
}
