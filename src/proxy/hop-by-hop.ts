import { validateHeaderName, validateHeaderValue } from 'node:http'

// RFC 9110 7.6.1 hop-by-hop headers, plus `expect` (the gateway answers 100-continue itself), `host`
// (set per route), `http2-settings` (an HTTP/1.1 Upgrade to h2c's, RFC 9113 8.2.2 connection-specific)
// and `proxy` ("httpoxy": a CGI, WSGI or PHP backend reads it as HTTP_PROXY, the proxy its own HTTP
// client uses); Proxy-* headers are for this hop only, but Proxy-Status (RFC 9209), meant to go on.
const ALWAYS = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect', 'http2-settings', 'proxy'])

/**
 * Fields Node's http2 writes once only (lib/internal/http2/util.js kSingleValueHeaders): it throws
 * on a second. Those lists by definition (RFC 9110 5.3, 8.4, 8.5, 13.1) are joined with `, `, which
 * means the same; a repeat of another with the same value is kept once, with another value it is
 * invalid (RFC 9110 5.3): which one the upstream meant is unknown.
 */
const ONCE = new Set(['access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age',
  'authorization', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5', 'content-range',
  'content-type', 'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'tk', 'upgrade-insecure-requests', 'user-agent', 'x-content-type-options'])
const LISTS = new Set(['content-encoding', 'content-language', 'if-match', 'if-none-match'])

/**
 * Hop-by-hop fields a plugin sets on a response (res.headers, a reply, extraResponseHeaders): the
 * gateway's alone to write, on HTTP/1.1 as on HTTP/2 (which refuses most of them); it sends no trailers.
 */
const PLUGIN_HOP = new Set([...ALWAYS, 'proxy-connection'])
/** The lengths of PLUGIN_HOP's names, as bits: a name in another case is lower-cased only at one of them. */
let hopLengths = 0
for (const name of PLUGIN_HOP) hopLengths |= 1 << name.length

/** Whether a plugin's response field `name`, in any case, is hop-by-hop: dropped before the head is written. */
export function pluginHopField (name: string): boolean {
  return PLUGIN_HOP.has(name) || ((hopLengths >>> name.length) & 1) === 1 && PLUGIN_HOP.has(name.toLowerCase())
}

/** Whether a Connection value names `close`. */
export function asksClose (value: unknown): boolean {
  return /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(Array.isArray(value) ? value.join(',') : String(value))
}

/** The names listed in a Connection header, lower-cased, if any. */
function connectionTokens (value: string | string[] | undefined): Set<string> | undefined {
  // The common values name no header: skip the parsing on the hot path.
  if (value === undefined || value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined
  const list = (Array.isArray(value) ? value.join(',') : value).toLowerCase().split(',')
  const out = new Set<string>()
  for (const t of list) { const n = t.trim(); if (n !== '' && n !== 'close' && n !== 'keep-alive') out.add(n) }
  return out.size === 0 ? undefined : out
}

function isHopByHop (name: string, named: Set<string> | undefined): boolean {
  // HTTP/2 pseudo-headers (:method, :path, :authority, :scheme) are not fields: :authority becomes Host (Runtime).
  return name.charCodeAt(0) === 58 /* : */ || ALWAYS.has(name) || (name.charCodeAt(0) === 112 /* p */ && name.startsWith('proxy-') && name !== 'proxy-status') || (named !== undefined && named.has(name))
}

/**
 * A client's Proxy-* headers, Proxy-Status too (a report for clients), and their `_` spellings
 * (`Proxy_Authorization`, read as Proxy-Authorization by CGI, WSGI and PHP backends).
 */
const clientProxyField = (name: string): boolean => name.charCodeAt(0) === 112 /* p */ && name.length > 6 && name.startsWith('proxy') && (name.charCodeAt(5) === 45 || name.charCodeAt(5) === 95)

const KEEP_ALL = (): boolean => false

/** Copies end-to-end request headers (Node's lower-cased object) into a new object, leaving out those `removed` names too. */
export function endToEndRequestHeaders (headers: Record<string, string | string[] | undefined>, removed: (name: string) => boolean = KEEP_ALL): Record<string, string | string[] | undefined> {
  const named = connectionTokens(headers.connection)
  const out: Record<string, string | string[] | undefined> = {}
  for (const name in headers) if (!isHopByHop(name, named) && !clientProxyField(name) && !removed(name)) out[name] = headers[name]
  return out
}

/**
 * A header value's bytes as a string of one char per byte (latin1), as Node and undici decode
 * them: written back as latin1 (Node's head, undici's request), any byte, UTF-8 or not, goes out unchanged.
 */
const bytesText = (v: Buffer | string | undefined): string => Buffer.isBuffer(v) ? v.toString('latin1') : String(v)

/** Whether a Transfer-Encoding value is `chunked` alone, the one coding undici takes off. */
export const onlyChunked = (value: string): boolean => value === 'chunked' || value.trim().toLowerCase() === 'chunked'

/**
 * End-to-end response headers from undici's raw [name, value, ...] buffers, lower-cased; undefined
 * when the response has a transfer coding other than chunked (`gzip, chunked`): undici takes off
 * the chunks only, and the client would get the rest coded with nothing saying how (RFC 9112 6.1).
 * A field written once only (see ONCE) repeated with another value: its name, the response invalid.
 * The same for clients of either protocol: a cache holds one response for both.
 */
export function endToEndResponseHeaders (raw: Buffer[]): Record<string, string | string[] | undefined> | string | undefined {
  const out: Record<string, string | string[] | undefined> = {}
  // Every Connection header counts: an upstream may send several.
  let connection: string | string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1').toLowerCase()
    const value = (raw[i + 1] as Buffer).toString('latin1')
    if (name === 'connection') { connection = connection === undefined ? value : [connection, value].flat(); continue }
    if (isHopByHop(name, undefined)) {
      if (name === 'transfer-encoding' && !onlyChunked(value)) return undefined
      continue
    }
    const prev = out[name]
    if (prev === undefined) out[name] = value
    else if (!ONCE.has(name)) out[name] = Array.isArray(prev) ? [...prev, value] : [prev, value]
    else if (LISTS.has(name)) out[name] = `${prev as string}, ${value}`
    else if (prev !== value) return name
  }
  // Headers named by Connection are rare: removed afterwards rather than checked in the loop.
  const named = connectionTokens(connection)
  if (named !== undefined) for (const name of named) delete out[name]
  return out
}

/**
 * endToEndResponseHeaders' rule for headers undici has parsed (a repeated field as an array), in
 * place: each field written once only made one value; the name of one repeated with another value.
 */
export function oneValueEach (headers: Record<string, string | string[] | undefined>): string | undefined {
  for (const name in headers) {
    const v = headers[name]
    if (!Array.isArray(v) || !ONCE.has(name)) continue
    if (LISTS.has(name)) headers[name] = v.join(', ')
    else if (v.every(x => x === v[0])) headers[name] = v[0]
    else return name
  }
  return undefined
}

/**
 * Whether a response's body ends with the connection (RFC 9112 6.3: no Content-Length, not
 * chunked, a status and method that have a body). Read from the raw head, before Transfer-Encoding
 * is dropped as hop-by-hop; called only for responses without Content-Length.
 */
export function closeDelimited (raw: Buffer[], status: number, method: string): boolean {
  if (method === 'HEAD' || status === 204 || status === 304) return false
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as Buffer).toString('latin1').toLowerCase() === 'transfer-encoding') return false
  return true
}

/**
 * The header lines of an upgrade's 101 from undici's raw [name, value, ...], as the upstream sent
 * them, less the hop-by-hop ones and those its Connection names; `Upgrade` stays, and Connection
 * says only `upgrade` (RFC 9110 7.8: the client switches on both). The upstream's X-Request-Id is
 * left out: the gateway adds its own, as on any response. `extra` (the request phase's
 * extraResponseHeaders) replaces the upstream's fields of the same names, as on any response;
 * it throws, as writeHead does, on a name or value that cannot be written.
 */
export function upgradeResponseHead (raw: ReadonlyArray<Buffer | string>, extra?: Readonly<Record<string, string | string[] | undefined>>): string {
  let connection: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) if (String(raw[i]).toLowerCase() === 'connection') (connection ??= []).push(String(raw[i + 1]))
  const named = connectionTokens(connection)
  let head = ''
  let connected = false
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i])
    const lower = name.toLowerCase()
    if (lower === 'connection') {
      if (!connected) head += `${name}: upgrade\r\n`
      connected = true
    } else if (lower === 'upgrade' || (!isHopByHop(lower, named) && extra?.[lower] === undefined && lower !== 'x-request-id')) head += `${name}: ${bytesText(raw[i + 1])}\r\n`
  }
  for (const name in extra) {
    const v = extra[name]
    // Connection and Upgrade say what the 101 switches to: not a plugin's to change.
    if (v === undefined || isHopByHop(name.toLowerCase(), undefined)) continue
    validateHeaderName(name)
    for (const value of Array.isArray(v) ? v : [v]) {
      validateHeaderValue(name, value)
      head += `${name}: ${value}\r\n`
    }
  }
  return head
}

/** The error writeHead would throw on the first field of `headers` it refuses (a CR or LF in a value), or undefined. */
export function unwritableField (headers: Readonly<Record<string, unknown>>): Error | undefined {
  for (const name in headers) {
    const v = headers[name]
    if (v === undefined) continue
    try {
      validateHeaderName(name)
      for (const value of Array.isArray(v) ? v : [v]) validateHeaderValue(name, value)
    } catch (err) {
      return err as Error
    }
  }
  return undefined
}
