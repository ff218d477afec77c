import { IncomingMessage, METHODS } from 'node:http'
import type { Socket } from 'node:net'
import { Runtime } from '../../runtime/runtime.ts'
import { createLogger } from '../../logging/logger.ts'
import { TOKEN } from '../../config/names.ts'
import { hostMatches, isValidHost, normalizeHost } from '../../routing/host-pattern.ts'
import { normalizePath, routingForm } from '../../routing/normalize-path.ts'
import { refusesTrace } from '../../routing/router.ts'
import type { CompiledRoute } from '../../runtime/compile-route.ts'
import { describeRoute } from '../../runtime/describe-route.ts'
import { formatStep } from '../../plugins/describe-step.ts'
import { GatewayError, type GatewayErrorKind } from '../../errors.ts'
import { framingFault } from '../../proxy/request-framing.ts'
import { loadOrReport, parseCommand, printWarnings } from '../options.ts'
import { pluginWarnings } from '../../plugins/plugin-warnings.ts'

const HELP = `Usage: portcullis explain [-c FILE] [-H "name: value"]... METHOD URL|PATH

Examples: portcullis explain GET http://api.example.com/users/7
          portcullis explain GET /users/7 -H "host: api.example.com"

Shows the normalized path, the matching route, its plugins in the order they run, and the
upstream and path the request would be forwarded to; or, when nothing matches, why each
route does not. With a bare PATH the host is the -H host header's, or none (only routes
without match.host can match). Exits 0 when a route matches, 1 when none does or the
gateway would refuse the request (400 for a bad host, path, method or Content-Length, 405
for TRACE, 501 for CONNECT), 2 for a METHOD or URL no client can send. The config's warnings
(as validate prints them) go to stderr.`

// An absolute URL (the scheme in any case, as the gateway reads it), or a bare path (host, if any, from -H).
const URL_RE = /^(?:(https?):\/\/([^/?#]*))?(\/[^?#]*|)(\?[^#]*)?/i
const METHOD_RE = new RegExp(TOKEN)
// Node's HTTP parser takes only the methods it knows, as written (upper case): any other is a 400.
const PARSED_METHODS = new Set(METHODS)
// What no request line can carry (a space ends the target): a client sends them percent-encoded.
// eslint-disable-next-line no-control-regex
const UNSENDABLE_RE = /[\x00-\x20\x7f]/
// What Node's HTTP parser refuses in a request target (400 bad_request, before the gateway sees it): raw UTF-8 is sent percent-encoded.
const NOT_ASCII_RE = /[^\p{ASCII}]/u
// The most a Content-Length may say for Node's parser (it counts in 64 bits).
const MAX_CONTENT_LENGTH = 2n ** 64n - 1n

export async function run (argv: string[]): Promise<number> {
  const opts = parseCommand(argv, HELP, { options: { header: { type: 'string', short: 'H', multiple: true } }, positionals: 2 })
  if (typeof opts === 'number') return opts
  const [methodArg, urlArg] = opts.positionals
  const parts = urlArg === undefined ? null : URL_RE.exec(urlArg)
  // Node hands a CONNECT, whatever its target (host:port), to the server's connect event: the gateway refuses it there.
  const connect = methodArg === 'CONNECT' && urlArg !== undefined
  if (methodArg === undefined || (!connect && (parts === null || (parts[1] === undefined && parts[3] === '')))) {
    console.error(`expected METHOD and an http(s) URL or a path starting with /\n\n${HELP}`)
    return 2
  }
  if (!METHOD_RE.test(methodArg)) { console.error(`"${methodArg}" is not an HTTP method: a method is letters, digits and !#$%&'*+-.^_\`|~ only`); return 2 }
  if (UNSENDABLE_RE.test(urlArg as string)) { console.error(`"${urlArg as string}" cannot be sent as a request target: percent-encode spaces and control characters`); return 2 }
  const method = methodArg
  const headerArgs = (opts.values.header as string[] | undefined) ?? []
  const badHeader = headerArgs.find(h => h.indexOf(':') < 1)
  if (badHeader !== undefined) { console.error(`-H expects "name: value", got "${badHeader}"\n\n${HELP}`); return 2 }
  const fields = headerArgs.map(h => {
    const i = h.indexOf(':')
    return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()] as const
  })
  const headers = nodeHeaders(fields)
  const loaded = await loadOrReport(opts.config)
  if (loaded === undefined) return 1
  // On stderr, as validate prints them: stdout keeps the answer alone.
  printWarnings(loaded)
  const runtime = await Runtime.build(loaded, createLogger({ level: 'silent' }), { dryRun: true })
  try {
    console.log(`${method} ${urlArg as string}`)
    const refused = refusedBeforeRouting(method, urlArg as string, fields)
    if (refused !== undefined) { console.log(`  → ${refused}`); return 1 }
    if (parts === null) return 1 // a CONNECT's host:port, refused above
    const hostArg = parts[2] ?? headers.host ?? ''
    const host = normalizeHost(hostArg)
    const rawPath = parts[3] === '' ? '/' : parts[3] as string
    const query = parts[4] ?? ''
    // As the gateway: a URL's authority, else the Host; none at all is for routes without match.host.
    if ((parts[2] !== undefined || headers.host !== undefined) && !isValidHost(hostArg)) {
      console.log(`  → 400 bad_host: "${hostArg}" is not a host name or [IPv6] address with an optional port`)
      return 1
    }
    const path = normalizePath(rawPath)
    if (path === undefined) {
      console.log('  → 400 bad_path: the path has an encoded slash or backslash, NUL, a semicolon, a malformed escape, or escapes that do not decode as UTF-8')
      return 1
    }
    if (path !== rawPath) console.log(`  normalized path  ${path}`)
    const match = runtime.router.match(host, method, path, headers)
    if (match === undefined) {
      const allow = runtime.router.allowedMethods(host, path, headers)
      console.log(allow.length > 0
        ? `  → ${answer(GatewayError.METHOD_NOT_ROUTED, `routes take ${allow.join(', ')} for this path (Allow)`)}. Why each route does not match:`
        : '  → 404 no_route. Why each route does not match:')
      for (const r of runtime.router.ordered()) console.log(`    ${r.name.padEnd(20)} ${whyNot(r, host, method, path, headers)}`)
      return 1
    }
    const r = match.route
    if (refusesTrace(method, r)) {
      console.log(`  → ${answer(GatewayError.METHOD_NOT_ALLOWED, `route ${r.name} matches, but TRACE is answered only by a route whose match.methods names it`)}`)
      return 1
    }
    const target = r.upstream.targets[0]
    const hostHeader = r.host === 'target' ? target?.host : r.host === 'client' ? hostArg : r.host.value
    console.log(`  route            ${r.name} (routes[${r.index}] in ${loaded.file})`)
    if (Object.keys(match.params).length > 0) console.log(`  params           ${JSON.stringify(match.params)}`)
    console.log(`  plugins          ${r.pipeline.steps.map(formatStep).join(' → ') || 'none'}`)
    // The plugins' warnings of this route (all warnings went to stderr above), secrets hidden as there (pluginWarnings).
    for (const w of pluginWarnings(loaded.config, loaded.plugins, r.index)) console.log(`  note             ${w.said}`)
    console.log(`  upstream         ${r.upstream.name}: ${r.upstream.targets.map(t => t.url).join(', ')}`)
    console.log(`  forwarded as     ${method} ${r.upstreamPath(path, match.params)}${query} (Host: ${hostHeader})`)
    return 0
  } finally {
    await runtime.dispose()
  }
}

/**
 * What the gateway answers before routing, in its order: Node's parser (a method it does not know,
 * a target with raw non-ASCII bytes, a Content-Length it does not take), CONNECT, then the
 * gateway's framing checks (two Host fields, a transfer coding it does not implement), with its
 * own functions.
 */
function refusedBeforeRouting (method: string, url: string, fields: ReadonlyArray<readonly [string, string]>): string | undefined {
  if (!PARSED_METHODS.has(method)) {
    const upper = method.toUpperCase()
    return `400 bad_request: "${method}" is not a method the gateway's HTTP parser knows${PARSED_METHODS.has(upper) ? ` (methods are case-sensitive: ${upper})` : ''}`
  }
  if (NOT_ASCII_RE.test(url)) return `400 bad_request: the gateway's HTTP parser refuses bytes outside ASCII in the request target: percent-encode them (${url.replace(/[^\p{ASCII}]+/gu, encodeURIComponent)})`
  const length = contentLengthRefusal(fields)
  if (length !== undefined) return answer(GatewayError.BAD_REQUEST, `the gateway's HTTP parser refuses ${length}`)
  if (method === 'CONNECT') return answer(GatewayError.CONNECT_REFUSED)
  // As Node hands it over: the target without a fragment (a client does not send it), the fields as sent.
  const request = { url: url.replace(/#.*/, ''), headers: nodeHeaders(fields), rawHeaders: fields.flat(), httpVersionMajor: 1, httpVersionMinor: 1 }
  const fault = framingFault(request as unknown as IncomingMessage)
  return fault === undefined ? undefined : answer(fault.error)
}

/**
 * The header fields as the gateway gets them, by Node's own rules: a repeated field joined with
 * `, ` (`; ` for Cookie), the first kept of those that take one value (Host, User-Agent...). The last
 * one winning here routed `-H 'x-admin: 1' -H 'x-admin: 1'` where the gateway does not (it sees `1, 1`).
 */
function nodeHeaders (fields: ReadonlyArray<readonly [string, string]>): Record<string, string> {
  const message = new IncomingMessage(null as unknown as Socket) as IncomingMessage & { _addHeaderLines (raw: string[], n: number): void }
  const raw = fields.flat()
  message._addHeaderLines(raw, raw.length)
  return message.headers as Record<string, string>
}

/** What Node's parser refuses in a request's Content-Length (as a phrase), or undefined. */
function contentLengthRefusal (fields: ReadonlyArray<readonly [string, string]>): string | undefined {
  const lengths = fields.filter(([name]) => name === 'content-length').map(([, value]) => value)
  const [value] = lengths
  if (value === undefined) return undefined
  // Even two equal ones.
  if (lengths.length > 1) return 'more than one Content-Length field'
  if (!/^\d+$/.test(value) || BigInt(value) > MAX_CONTENT_LENGTH) return `Content-Length "${value}" (a number of bytes is digits only, less than 2^64)`
  if (fields.some(([name]) => name === 'transfer-encoding')) return 'a request with both Content-Length and Transfer-Encoding'
  return undefined
}

/** The gateway's answer as a line: its status, code and message (or what explains it here). */
const answer = (error: GatewayErrorKind, why: string = error.message): string => `${error.status} ${error.code}: ${why}`

function whyNot (r: CompiledRoute, host: string, method: string, path: string, headers: Record<string, string>): string {
  if (r.hosts.length > 0 && !r.hosts.some(h => hostMatches(h, host))) return `host "${host}" is not ${describeRoute(r).hosts.join(' or ')}`
  // As the router matches it: with the escapes of characters a segment holds as they are decoded.
  if (r.path.match(routingForm(path)) === undefined) return `path ${path} does not match ${r.path.source}`
  if (r.methods !== undefined && !r.methods.has(method)) return `method ${method} is not one of ${[...r.methods].join(', ')}`
  const h = r.headers.find(([name, value]) => headers[name] !== value)
  return h === undefined ? 'matches' : `header ${h[0]} is not "${h[1]}"`
}
