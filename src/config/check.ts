import { METHODS } from 'node:http'
import { BlockList, isIPv4, isIPv6 } from 'node:net'
import proxyAddr from 'proxy-addr'
import type { GatewayConfig } from './schema.ts'
import type { SchemaProblem } from './validate.ts'
import { didYouMean, suggester } from './suggest.ts'
import { toMs } from './duration.ts'
import { checkUpstreams } from './check-upstreams.ts'
import { addressRangeProblem } from './address-range.ts'
import { ShadowedRoutes, type Shadow } from './shadowed-routes.ts'
import { checkPluginSection, checkRoute } from './check-plugins.ts'
import { checkConsumers, checkStores } from './check-platform.ts'
import { schemaReferences } from './schema-refs.ts'
import { compilePathPattern, compileRewrite } from '../routing/path-pattern.ts'
import { configsByPlugin, section } from '../plugins/effective.ts'
import { clientIdentityTest, isIdentityHeader, vouchedBy } from '../plugins/identity.ts'
import { hostHeaderProblem, parseHostPattern } from '../routing/host-pattern.ts'
import type { PluginDefinition } from '../plugins/contract.ts'

const KNOWN_METHODS = new Set(METHODS)
// The addresses `localhost` resolves to.
const LOCALHOST: ReadonlySet<string> = new Set(['127.0.0.1', '::1'])
// proxy-addr's names for lists of ranges, which server.trustProxy takes.
const PROXY_ADDR_NAMES: ReadonlySet<string> = new Set(['loopback', 'linklocal', 'uniquelocal'])
// The upstream names an unknown one's message lists.
const SHOWN_UPSTREAMS = 20

/**
 * Checks the schema cannot express: references, patterns, conflicts, and each plugin's own config.
 * `skip`: the parts the schema rejected, whose shape cannot be relied on: routes (by index; only
 * their upstream and plugins are checked), upstreams (by name, still valid as route references),
 * the admin section and the sections named.
 */
export interface Unsound { routes: Set<number>, upstreams: Set<string>, admin: boolean, sections: Set<'stores' | 'consumers' | 'plugins'> }

export function checkConfig (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, base: string,
  skip: Unsound = { routes: new Set(), upstreams: new Set(), admin: false, sections: new Set() }): SchemaProblem[] {
  const problems: SchemaProblem[] = []
  const add = (path: Array<string | number>, message: string, at: 'key' | 'value' = 'value') => problems.push({ path, at, message })
  const upstreamHint = suggester(Object.keys(config.upstreams))
  const upstreamNames = Object.keys(config.upstreams).sort()
  // As an unknown plugin's message, but bounded: a generated config may define thousands.
  const knownUpstreams = upstreamNames.length === 0
    ? 'no upstreams are defined'
    : `there are: ${upstreamNames.slice(0, SHOWN_UPSTREAMS).join(', ')}${upstreamNames.length > SHOWN_UPSTREAMS ? ` and ${upstreamNames.length - SHOWN_UPSTREAMS} more` : ''}`
  const seenNames = new Map<string, number>()
  const shadowed = new ShadowedRoutes()
  const refs = schemaReferences(config, base, add)

  const upstreamRef = (upstream: string, i: number) => {
    if (!Object.hasOwn(config.upstreams, upstream)) add(['routes', i, 'upstream'], `unknown upstream "${upstream}"${upstreamHint(upstream)}; ${knownUpstreams}`)
  }
  // A path that does not compile: the plugins are checked without the route's params.
  const routePlugins = (own: unknown, pattern: ReturnType<typeof compilePathPattern> | undefined, i: number) => {
    checkPluginSection(config, section(own), ['routes', i, 'plugins'], pattern === undefined || typeof pattern === 'string' ? undefined : checkRoute(pattern.params, config, own, plugins),
      plugins, refs, problems, add)
  }

  config.routes.forEach((route, i) => {
    if (skip.routes.has(i)) {
      // The schema rejected some of it (a name, a path): its upstream and plugins, where of the type to be read, are still checked.
      const r = section(route)
      if (typeof r?.upstream === 'string' && r.upstream !== '') upstreamRef(r.upstream, i)
      const path = section(r?.match)?.path
      if (section(r?.plugins) !== undefined) routePlugins(r?.plugins, typeof path === 'string' ? compilePathPattern(path) : undefined, i)
      return
    }
    const here = (...rest: Array<string | number>) => ['routes', i, ...rest]
    const first = seenNames.get(route.name)
    if (first !== undefined) add(here('name'), `route name "${route.name}" is already used by routes[${first}]`)
    else seenNames.set(route.name, i)

    upstreamRef(route.upstream, i)
    const hosts = route.match.host === undefined ? [] : Array.isArray(route.match.host) ? route.match.host : [route.match.host]
    // As the router compares hosts: `API.example.com` and `api.example.com.` are one.
    const hostKeys = new Set<string>()
    let badHost = false
    hosts.forEach((h, j) => {
      const parsed = parseHostPattern(h)
      if (typeof parsed === 'string') {
        add(Array.isArray(route.match.host) ? here('match', 'host', j) : here('match', 'host'), `host "${h}": ${parsed}`)
        badHost = true
      } else hostKeys.add(parsed.kind === 'exact' ? parsed.host : '*' + parsed.suffix)
    })
    route.match.methods?.forEach((m, j) => {
      if (!KNOWN_METHODS.has(m.toUpperCase())) add(here('match', 'methods', j), `unknown HTTP method "${m}"${didYouMean(m.toUpperCase(), KNOWN_METHODS)}`)
      // Refused before routing (501 not_implemented): a route for it could never be used.
      else if (m.toUpperCase() === 'CONNECT') add(here('match', 'methods', j), 'CONNECT asks for a tunnel, which the gateway never opens (501 not_implemented): no route can match it')
    })
    // A request has one value per header name, whatever its case: two conditions on one name could never both hold.
    const headerNames = new Map<string, string>()
    for (const name of Object.keys(route.match.headers ?? {})) {
      const first = headerNames.get(name.toLowerCase())
      if (first !== undefined) add(here('match', 'headers', name), `"${name}" repeats "${first}" (header names are case-insensitive): keep one`, 'key')
      else headerNames.set(name.toLowerCase(), name)
    }
    const pattern = compilePathPattern(route.match.path)
    if (typeof pattern === 'string') add(here('match', 'path'), `path "${route.match.path}": ${pattern}`)
    else {
      const strips = (prefix: string) => prefix === '/' || pattern.literalPrefix === prefix || pattern.literalPrefix.startsWith(prefix + '/')
      if (route.stripPrefix !== undefined && !strips(route.stripPrefix)) {
        // `/orders/` for `/orders/*`, whose literal prefix is `/orders`.
        const bare = route.stripPrefix.replace(/\/+$/, '')
        const hint = bare !== '' && bare !== route.stripPrefix && strips(bare) ? ` (write ${bare})` : ''
        add(here('stripPrefix'), `"${route.stripPrefix}" is not a prefix of every path this route matches (${route.match.path})${hint}`)
      }
      if (route.rewrite !== undefined) {
        const rw = compileRewrite(route.rewrite, pattern.params)
        if (typeof rw === 'string') add(here('rewrite'), `rewrite "${route.rewrite}": ${rw}`)
      }
    }
    if (route.stripPrefix !== undefined && route.rewrite !== undefined) add(here('rewrite'), 'use either stripPrefix or rewrite, not both')
    if (route.preserveHost === true && route.hostHeader !== undefined) add(here('hostHeader'), 'use either preserveHost or hostHeader, not both')
    if (route.hostHeader !== undefined) {
      const bad = hostHeaderProblem(route.hostHeader)
      if (bad !== undefined) add(here('hostHeader'), `${JSON.stringify(route.hostHeader)}: ${bad}`)
    }

    // Equal up to param names (`:id` and `:uid` match alike) and GET's implied HEAD. A route whose
    // path or a host is refused is left out: what it would match is not known.
    const methods = route.match.methods === undefined ? undefined : new Set(route.match.methods.map(m => m.toUpperCase()))
    if (methods?.has('GET') === true) methods.add('HEAD')
    const shadow = typeof pattern === 'string' || badHost
      ? undefined
      : shadowed.add(i, {
        hosts: hostKeys,
        // Params are whole segments (PARAM_RE): `/v1/things:batchGet` is literal text.
        path: route.match.path.replace(/(?<=\/):[A-Za-z_][A-Za-z0-9_]*(?=\/|$)/g, ':'),
        methods,
        headers: Object.entries(route.match.headers ?? {}).map(([k, v]) => `${k.toLowerCase()}: ${v}`)
      })
    if (shadow !== undefined) add(here('match'), shadowedMessage(shadow, config.routes[shadow.by] as GatewayConfig['routes'][number]))

    routePlugins(route.plugins, pattern, i)
  })
  if (!skip.sections.has('plugins')) checkPluginSection(config, config.plugins, ['plugins'], undefined, plugins, refs, problems, add)
  // After the plugin sections: their configs as validated, defaults applied, as vouchedHeaders gets them.
  checkGatewayHeaderMatches(config, plugins, skip.routes, add)
  if (!skip.sections.has('stores')) checkStores(config, add)
  if (!skip.sections.has('consumers')) checkConsumers(config, plugins, refs, problems, add)
  checkUpstreams(config.upstreams, add, skip.upstreams)
  // The server section may be malformed (its schema problems are reported already).
  const server = config.server as GatewayConfig['server'] | null
  const h2 = server?.http2
  // proxy-addr's own words for what it cannot read ("invalid IP address: x"); at start it threw them.
  // What it reads otherwise than written (10.0.0.5/8 as all of 10.0.0.0/8, 010.0.0.1 as 8.0.0.1)
  // is refused as ip-filter refuses it: trusting a wider range lets its clients forge X-Forwarded-For.
  if (Array.isArray(server?.trustProxy)) {
    server.trustProxy.forEach((entry, i) => {
      try { proxyAddr.compile([entry]) } catch (err) { add(['server', 'trustProxy', i], `${(err as Error).message} (an address, a CIDR range, or loopback, linklocal, uniquelocal)`); return }
      const problem = PROXY_ADDR_NAMES.has(entry) ? undefined : addressRangeProblem(entry)
      if (problem !== undefined) add(['server', 'trustProxy', i], problem)
    })
  }
  if (server?.tls === undefined && (h2 === true || (typeof h2 === 'object' && h2 !== null && h2.h2c === undefined))) {
    add(['server', 'http2'], 'HTTP/2 on server.listen needs server.tls (clients choose it in the TLS handshake, by ALPN); for cleartext HTTP/2 (prior knowledge) add h2c: { listen: { port: ... } }')
  }
  // 0 would close every WebSocket at each reload: left out, none is closed.
  if (server?.reloadTunnelTimeout !== undefined && zeroDuration(server.reloadTunnelTimeout)) {
    add(['server', 'reloadTunnelTimeout'], 'must be more than 0 (leave it out for no limit)')
  }
  // 0 would mean two things: Fastify's default (72s) at start, no timeout for Node after a reload.
  if (server?.keepAliveTimeout !== undefined && zeroDuration(server.keepAliveTimeout)) {
    add(['server', 'keepAliveTimeout'], 'must be more than 0: idle connections are never kept forever (leave it out for 72s)')
  }
  // 0 would be no timeout for the headers (a slowloris hole), yet 120s for a TLS handshake.
  if (server?.clientTimeouts?.headers !== undefined && zeroDuration(server.clientTimeouts.headers)) {
    add(['server', 'clientTimeouts', 'headers'], 'must be more than 0: a client that never finishes its headers would hold its connection for good (leave it out for 30s)')
  }
  const admin = config.admin
  if (!skip.admin && admin !== undefined && admin.token === undefined && !isLoopback(admin.listen.host)) {
    add(['admin', 'listen', 'host'], `"${admin.listen.host}" is reachable from other machines: set admin.token (e.g. token: "\${ADMIN_TOKEN}", and ADMIN_TOKEN in the environment: a token that comes out empty is none) or listen on 127.0.0.1`)
  }
  // Without admin.token every endpoint is open: a read-only token would restrict nothing.
  if (!skip.admin && admin?.readToken !== undefined && admin.token === undefined) {
    add(['admin', 'readToken'], 'needs admin.token: without it every admin endpoint is open to anyone, reads and writes alike')
  } else if (!skip.admin && admin?.readToken !== undefined && admin.readToken === admin.token) {
    add(['admin', 'readToken'], 'is the same as admin.token: a read-only token must differ, or it could reload and purge')
  }
  checkListenerPorts(server, skip.admin ? undefined : admin, add)
  return problems
}

/**
 * Routes matching on a header only the gateway sets: an identity header, or one a plugin vouches
 * for (jwt-auth's forwardClaims) anywhere in the config. Routing reads the client's headers, and
 * the gateway removes the client's own of these only after it (clientIdentityTest): any client
 * that sends one would choose the route, credentials or not.
 */
function checkGatewayHeaderMatches (config: GatewayConfig, plugins: ReadonlyMap<string, PluginDefinition>, skip: ReadonlySet<number>,
  add: (path: Array<string | number>, message: string, at: 'key' | 'value') => void): void {
  if (!config.routes.some((r, i) => !skip.has(i) && r.match.headers !== undefined)) return
  // By the form the gateway removes (lower-case, `_` as `-`): the plugin that sets it.
  const vouched = new Map<string, string>()
  for (const [name, configs] of configsByPlugin(config)) {
    const def = plugins.get(name)
    if (def === undefined) continue
    for (const c of configs) {
      // A plugin's vouchedHeaders that fails was reported at its config.
      const names = vouchedBy(def, c)
      if (typeof names !== 'string') for (const h of names) vouched.set(h.toLowerCase().replaceAll('_', '-'), name)
    }
  }
  const gatewaySets = clientIdentityTest(new Set(vouched.keys()))
  config.routes.forEach((route, i) => {
    if (skip.has(i)) return
    for (const name of Object.keys(route.match.headers ?? {})) {
      const lower = name.toLowerCase()
      if (!gatewaySets(lower)) continue
      const what = isIdentityHeader(lower) ? 'an identity header' : `set by ${vouched.get(lower.replaceAll('_', '-')) as string} from what it verified`
      add(['routes', i, 'match', 'headers', name], `"${name}" is ${what}: the gateway removes the client's and sets its own only after routing, ` +
        `so route "${route.name}" would be chosen by whatever a client sends in it, with credentials or without`, 'key')
    }
  })
}

/** Why a route is never chosen: `earlier`, routes[`shadow.by`], takes its requests. */
function shadowedMessage (shadow: Shadow, earlier: GatewayConfig['routes'][number]): string {
  if (!shadow.hosts && !shadow.methods) return `matches exactly the same requests as routes[${shadow.by}], so it could never be used`
  const list = (v: unknown) => (Array.isArray(v) ? v : [v]).join(', ')
  const wider = [...(shadow.methods ? [`methods ${list(earlier.match.methods)}`] : []), ...(shadow.hosts ? [`hosts ${list(earlier.match.host)}`] : [])]
  return `routes[${shadow.by}] ("${earlier.name}") takes every request this route matches, so it could never be used: the same path and precedence, declared first, and its ${wider.join(' and ')} include these; ` +
    `declare this route before routes[${shadow.by}] (which keeps the requests this one does not match)`
}

/**
 * Two listeners on one port (not 0) and overlapping addresses: the second would fail at start with
 * "already in use", as if another program held it. Named at the later one's port, with the other's key.
 */
function checkListenerPorts (server: GatewayConfig['server'] | null, admin: GatewayConfig['admin'], add: (path: string[], message: string) => void): void {
  const h2 = server?.http2
  const listeners: Array<[string[], { host?: string, port: number } | undefined]> = [
    [['server', 'listen'], server?.listen],
    [['server', 'http2', 'h2c', 'listen'], typeof h2 === 'object' && h2 !== null ? h2.h2c?.listen : undefined],
    [['server', 'tls', 'redirectHttp', 'listen'], server?.tls?.redirectHttp?.listen],
    [['admin', 'listen'], admin?.listen]
  ]
  const seen: Array<[string[], string, number]> = []
  for (const [key, at] of listeners) {
    // A section the schema refused has no port to rely on; hosts left out are 0.0.0.0 but the admin's (filled in).
    if (typeof at?.port !== 'number' || at.port === 0) continue
    const host = (typeof at.host === 'string' ? at.host : '0.0.0.0').toLowerCase()
    const other = seen.find(([, h, p]) => p === at.port && hostsOverlap(h, host))
    if (other !== undefined) add([...key, 'port'], `${at.port} is also ${other[0].join('.')}.port (on ${other[1]}): two listeners cannot share a port; give this one another`)
    seen.push([key, host, at.port])
  }
}

/**
 * Whether two addresses bound on one port collide: the same, or a wildcard taking the other (:: takes
 * IPv4 too; 0.0.0.0 IPv4 and names, which may resolve to it), or localhost and the loopback address
 * it resolves to (either one: not looked up here, as validate runs where the gateway may not).
 */
function hostsOverlap (a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true
  if ((a === 'localhost' && LOCALHOST.has(b)) || (b === 'localhost' && LOCALHOST.has(a))) return true
  return (a === '0.0.0.0' && !isIPv6(b)) || (b === '0.0.0.0' && !isIPv6(a))
}

/** Whether a duration is 0; false for a malformed one (the schema's to report). */
function zeroDuration (value: number | string): boolean {
  try { return toMs(value) === 0 } catch { return false }
}

// 127.0.0.0/8 and ::1, however written (0:0:0:0:0:0:0:1, ::ffff:7f00:1: BlockList reads IPv4-mapped ones as IPv4).
const LOOPBACK = new BlockList()
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4')
LOOPBACK.addAddress('::1', 'ipv6')

function isLoopback (host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true
  return isIPv4(host) ? LOOPBACK.check(host, 'ipv4') : isIPv6(host) && LOOPBACK.check(host, 'ipv6')
}
