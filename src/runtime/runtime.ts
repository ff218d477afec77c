import type { IncomingMessage, ServerResponse } from 'node:http'
import { METHODS } from 'node:http'
import type { Duplex } from 'node:stream'
import { isDeepStrictEqual } from 'node:util'
import type { Logger } from 'pino'
import type { LoadedConfig } from '../config/load.ts'
import { destroyAfterLinger, GatewayError, sendError, type GatewayErrorKind } from '../errors.ts'
import { buildPipeline, describePipeline, type Pipeline } from '../plugins/pipeline.ts'
import { describeThrown, loggedThrown, logThrown, PluginHookFailure } from '../plugins/thrown.ts'
import { Exchange, type ExchangeOwner } from '../proxy/exchange.ts'
import { applyForwarded, clientAddress, compileTrust, trustedRemovals, trustsPeer, untrustedRemovals } from '../proxy/forwarded.ts'
import { endToEndRequestHeaders } from '../proxy/hop-by-hop.ts'
import { framingFault } from '../proxy/request-framing.ts'
import { closeOnEnd, upgradeRefusal } from '../proxy/upgrade.ts'
import { requestId } from '../proxy/request-id.ts'
import { boundedTracestate, traceContext, traceparent } from '../proxy/trace-context.ts'
import { isValidHost, normalizeHost, sameAuthority } from '../routing/host-pattern.ts'
import { normalizePath, routingForm } from '../routing/normalize-path.ts'
import { compilePathPattern, type PathPattern } from '../routing/path-pattern.ts'
import { refusesTrace, Router, takesAsideFromHeaders, type RouteMatch } from '../routing/router.ts'
import { Upstream, type Target, type TargetAddress, type UpstreamSnapshot } from '../upstreams/upstream.ts'
import { upstreamEvents } from '../upstreams/events.ts'
import { startHealthChecks } from '../upstreams/health-check.ts'
import { startDnsDiscovery, type DnsDiscovery } from '../upstreams/dns-discovery.ts'
import { upstreamFailureMessage } from '../upstreams/tls.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { pluginMetrics } from '../metrics/plugin-metrics.ts'
import { Registry } from 'prom-client'
import { Consumers } from '../consumers/consumers.ts'
import type { StoreRegistry, StoreLease } from '../stores/registry.ts'
import { PluginAdminRoutes } from '../plugins/admin-routes.ts'
import type { UpstreamBodyInvalid } from '../plugins/upstream-body-invalid.ts'
import { DEFAULT_PLUGIN_TIMEOUT_MS, disposeShared, type PluginServices } from '../plugins/context.ts'
import { configsOf, effectivePlugins } from '../plugins/effective.ts'
import { clientIdentityTest, vouchedHeaders } from '../plugins/identity.ts'
import { warnOutsideBuiltins } from '../plugins/registry.ts'
import { replacedTopLevel } from '../config/check-plugins.ts'
import { compileRoute, type CompiledRoute } from './compile-route.ts'
import { clientTimeouts } from '../server/client-timeouts.ts'
import { DEFAULT_REQUEST_BUFFER_TOTAL } from '../proxy/body-budget.ts'
import { toBytes } from '../config/byte-size.ts'
import { DispositionFirstResponse } from '../server/disposition-first.ts'
import { headerListSize, http2Limits, isHttp2 } from '../server/http2.ts'
import { consumerIdOf, protocolOf } from '../logging/access-log.ts'
import { loggedPath, loggedTarget, redactHeaders } from '../logging/logger.ts'
import { LogLimiter } from '../logging/log-limiter.ts'
import { toMs } from '../config/duration.ts'

const TIMEOUT_KINDS: Readonly<Record<string, string>> = {
  UND_ERR_HEADERS_TIMEOUT: 'upstream_response',
  UND_ERR_BODY_TIMEOUT: 'upstream_idle',
  UPSTREAM_SEND_TIMEOUT: 'upstream_send',
  UND_ERR_CONNECT_TIMEOUT: 'upstream_connect',
  REQUEST_TIMEOUT: 'request'
}
/** How much of a plugin's error message tells its `plugin failed` lines apart (see pluginFailed). */
const MESSAGE_KEY = 64
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(\/?)/i
const HTTP_SCHEME = /^https?$/i
/** A byte of a request target outside printable ASCII (HTTP/2's :path may carry one). */
const NOT_PRINTABLE = /[^!-~]/
/**
 * The methods Node's HTTP/1.1 parser takes (upper-case): it refuses any other with 400. HTTP/2
 * carries any token as `:method`: `delete` would miss a route that names DELETE, match one without
 * methods, and reach an upstream that upper-cases it (Werkzeug, cheroot) as that DELETE.
 */
const HTTP1_METHODS: ReadonlySet<string> = new Set(METHODS)
/** Headers some backend frameworks route by (IIS, Symfony, Zend): an authorization bypass if a client may set them. */
// Headers some backend frameworks take as the path or the method (IIS, Symfony, Zend; Express
// method-override, Laravel, ASP.NET): a client could reach what no route or plugin checked.
const DEFAULT_REMOVED = ['x-original-url', 'x-rewrite-url', 'x-http-method-override', 'x-http-method', 'x-method-override']

/** See Runtime.build. */
export type BuildOptions = { discovery?: boolean, metrics?: Metrics, healthChecks?: boolean, previous?: Runtime } &
  ({ dryRun: true, stores?: undefined } | { dryRun?: false, stores: StoreRegistry })

/**
 * Everything built from one config: routes, pipelines, upstream pools. Built whole, then used;
 * swapped whole on reload, and disposed once its in-flight requests have finished.
 */
export class Runtime implements ExchangeOwner {
  readonly loaded: LoadedConfig
  readonly routes: readonly CompiledRoute[]
  readonly router: Router<CompiledRoute>
  readonly upstreams: ReadonlyMap<string, Upstream>
  readonly log: Logger
  /** For the lines a client can provoke at will: a failed try, a plugin's failure, a slow client. */
  readonly #limits: LogLimiter
  /** The admin endpoints plugins added (/plugins/<name>/...). */
  readonly pluginAdmin: PluginAdminRoutes
  readonly #services: PluginServices | undefined
  /** Whether requests no route took are counted (metrics.requests). */
  readonly #countUnmatched: boolean
  #trust: (addr: string, hop: number) => boolean
  /**
   * Request headers never sent upstream (server.removeRequestHeaders, and see trustedRemovals),
   * lower-cased, and the client's identity headers (see clientIdentityTest), on every route.
   */
  readonly #removed: (name: string) => boolean
  /** Those and the forwarding headers an untrusted peer may not set (see untrustedRemovals). */
  readonly #removedUntrusted: (name: string) => boolean
  /**
   * By the CGI form (lower case, `_` as `-`) of each header name a route matches on that has other
   * spellings, the routes matching it (see #dropOtherSpellings); undefined when there is none.
   */
  readonly #spelledRoutes: ReadonlyMap<string, readonly CompiledRoute[]> | undefined
  /** The header names routes match on, as written: never removed as another's spelling. */
  readonly #matchedNames: ReadonlySet<string>
  /** server.traceContext: whether a trusted peer's (server.trustProxy), and an untrusted one's, trace is continued. */
  readonly #traceTrusted: boolean
  readonly #traceUntrusted: boolean
  /**
   * server.http2.maxHeaderListSize: checked here too, for Node enforces it only once the client has
   * acknowledged it: one that never does could send megabytes (see Http2Connections.checkHeaderList).
   */
  readonly #maxHeaderList: number
  #accessLog: boolean
  #logHeaders: boolean
  /**
   * Headers shown as [redacted] on every access line with headers: those any route's plugins read
   * credentials from (a client may send one to a route that ignores it) and logging.redactHeaders,
   * in the request and the response (an upstream may answer with a token: X-Auth-Token).
   */
  readonly #redactedHeaders: readonly string[]
  #inFlight = 0
  /**
   * The exchanges in flight; once retired, less those seen past their response's start (see
   * #mayPickAgain). Only read once retired: in service, one add and one delete per request.
   */
  readonly #live = new Set<Exchange>()
  /** Retired: those #mayPickAgain took out of #live, still in flight (server.reloadTunnelTimeout cuts them too). */
  readonly #begun = new Set<Exchange>()
  /** The exchanges that became tunnels (WebSockets) and are still open. */
  readonly #tunnels = new Set<Exchange>()
  /** Retired, with server.reloadTunnelTimeout: cuts the requests left (see closeTunnelsAfter), and then closes the tunnels that open. */
  #tunnelTimer: NodeJS.Timeout | undefined
  /** When #tunnelTimer fires (performance.now()). */
  #tunnelDeadline = Infinity
  /** Set once its tunnels were closed (server.reloadTunnelTimeout, a shutdown): why, for those that open later. */
  #tunnelsClosed: 'reload' | 'shutdown' | undefined
  /** Set while retired with its DNS discovery and health checks still running: rechecks every second (see #stopWhenDone). */
  #recheck: NodeJS.Timeout | undefined
  /** Past the shutdown's deadline: a request ending unfinished was cut by it (see cutAtShutdown). */
  #cutAtShutdown = false
  readonly clientBodyMs: number
  readonly clientMinBodyRate: number
  readonly clientSendMs: number
  readonly requestBufferTotal: number
  readonly #metrics: Metrics | undefined
  #drained: (() => void) | undefined
  #disposed: Promise<void> | undefined
  #stopUpstreamWork: () => Promise<void> = async () => {}
  #retireUpstreamWork: (next: Runtime) => Promise<void> = async () => {}
  /** By upstream, its DNS discovery and (`checks`: their stop) health checks, while they run. */
  readonly #work = new Map<string, { discovery: DnsDiscovery, checks: (() => Promise<void>) | undefined }>()
  /** Retired: the runtime that replaced this one, whose discovery and checks this one's follow where alike (see healthOf). */
  #next: Runtime | undefined

  private constructor (loaded: LoadedConfig, routes: CompiledRoute[], upstreams: Map<string, Upstream>, log: Logger, limits: LogLimiter, services: PluginServices | undefined, metrics: Metrics | undefined) {
    this.loaded = loaded
    this.#limits = limits
    this.#countUnmatched = loaded.config.metrics?.requests !== false
    this.#services = services
    this.pluginAdmin = services?.admin ?? new PluginAdminRoutes()
    this.routes = routes
    this.router = new Router(routes)
    this.upstreams = upstreams
    this.log = log
    const { server, logging } = loaded.config
    this.#trust = compileTrust(server.trustProxy)
    const removed = new Set((server.removeRequestHeaders ?? DEFAULT_REMOVED).map(h => h.toLowerCase()))
    this.#matchedNames = new Set(routes.flatMap(r => r.headers.map(([name]) => name)))
    const spelled = new Map<string, CompiledRoute[]>()
    for (const r of routes) {
      for (const [name] of r.headers) {
        if (!/[-_]/.test(name)) continue
        const cgi = name.replaceAll('_', '-')
        const list = spelled.get(cgi) ?? []
        if (!list.includes(r)) list.push(r)
        spelled.set(cgi, list)
      }
    }
    this.#spelledRoutes = spelled.size === 0 ? undefined : spelled
    const traceFrom = server.traceContext ?? 'continue'
    this.#traceTrusted = traceFrom !== 'restart'
    this.#traceUntrusted = traceFrom === 'continue'
    // A caller whose trace is not continued has its tracestate and baggage removed with the others.
    const untraced = (continued: boolean) => continued ? removed : new Set([...removed, 'tracestate', 'baggage'])
    // Whoever the peer: only the gateway vouches for a consumer or a verified claim.
    const identity = clientIdentityTest(vouchedHeaders(loaded.plugins, name => configsOf(loaded.config, name)))
    const leftOut = (removes: (name: string) => boolean) => (name: string): boolean => removes(name) || identity(name)
    this.#removed = leftOut(trustedRemovals(untraced(this.#traceTrusted)))
    this.#removedUntrusted = leftOut(untrustedRemovals(untraced(this.#traceUntrusted)))
    this.#maxHeaderList = http2Limits(server)?.maxHeaderListSize ?? Infinity
    this.#accessLog = logging?.accessLog ?? true
    this.#logHeaders = logging?.headers ?? false
    this.#redactedHeaders = [...new Set([...routes.flatMap(r => r.pipeline.redactedHeaders), ...(logging?.redactHeaders ?? []).map(h => h.toLowerCase())])]
    const client = clientTimeouts(server)
    this.clientBodyMs = client.body
    this.clientMinBodyRate = client.minBodyRate
    this.clientSendMs = client.send
    this.requestBufferTotal = server.requestBufferTotal === undefined ? DEFAULT_REQUEST_BUFFER_TOTAL : toBytes(server.requestBufferTotal)
    this.#metrics = metrics
  }

  /**
   * `dryRun` skips plugin setup, health checks and DNS (for `routes` and `explain`, which must not open
   * connections); with `discovery` it still resolves DNS targets and keeps them current (the cluster
   * primary's view: its health checks must probe the addresses the workers send to).
   * `healthChecks: false` when another process runs them and calls Upstream.setTargetHealth.
   * `previous`: the runtime a reload replaces, whose targets pass on their health.
   * `stores`: the process's stores, shared with the runtimes before and after this one. Required
   * unless `dryRun`: a registry of the runtime's own would lose every store's state on reload.
   */
  /**
   * Just before this runtime replaces `previous`: its upstreams catch up with what traffic taught previous's
   * during the build (Upstream.catchUp), and the plugins are told it is in service (see #tellShared).
   */
  catchUp (previous: Runtime): void {
    for (const [name, u] of this.upstreams) {
      const before = previous.upstreams.get(name)
      if (before !== undefined) u.catchUp(before)
    }
    this.#tellShared('inService')
  }

  /**
   * The config goes into service, or out of it (retire: another took its place, its requests in flight
   * still run): the plugins' ctx.shared values with an inService() / outOfService() are told (the cache
   * drops then the entries an earlier config left, see Purger.inService). Not before: a config built but
   * never put in service (a reload called off, a build failing after) changes nothing. A value that
   * throws is logged: the swap has happened, it cannot be undone.
   */
  #tellShared (event: 'inService' | 'outOfService'): void {
    for (const value of this.#services?.shared.values() ?? []) {
      try {
        (value as Partial<Record<typeof event, () => void>> | null)?.[event]?.()
      } catch (err) {
        this.log.error({ err }, `a plugin's ctx.shared value failed in ${event}()`)
      }
    }
  }

  static async build (loaded: LoadedConfig, log: Logger, options: BuildOptions): Promise<Runtime> {
    const limits = new LogLimiter(log)
    const events = upstreamEvents(log, options.metrics, limits)
    const upstreams = new Map(Object.entries(loaded.config.upstreams).map(([name, c]) => [name, new Upstream(name, c, events, loaded.upstreamTls?.get(name))]))
    if (options.dryRun !== true) await warnOutsideBuiltins(loaded.plugins, loaded.config, log)
    if (options.dryRun !== true) for (const w of loaded.warnings ?? []) log.warn({ file: w.file, line: w.line, col: w.col, path: w.path }, w.message)
    if (options.dryRun !== true) for (const w of replacedTopLevel(loaded.config, loaded.plugins)) log.warn({ route: w.route, plugin: w.plugin, lost: w.lost }, w.message)
    for (const [name, c] of Object.entries(loaded.config.upstreams)) {
      if (c.tls?.rejectUnauthorized === false && options.dryRun !== true) log.warn({ upstream: name }, 'upstream TLS certificates are not verified (tls.rejectUnauthorized: false): anyone on the path can impersonate its targets')
      // Nothing in the bytes tells a misframed answer from the next one: nginx never pipelines upstream.
      if ((c.pipelining ?? 1) > 1 && options.dryRun !== true) log.warn({ upstream: name, pipelining: c.pipelining }, 'upstream pipelining is on: an answer that runs past its length hands the next answers on its connection to the wrong clients; only for targets whose framing you trust')
    }
    // On reload, targets keep their health, those DNS discovery is about to create too: see Upstream.inheritState.
    for (const [name, u] of upstreams) {
      const before = options.previous?.upstreams.get(name)
      if (before !== undefined) u.inheritState(before)
    }
    const pipelines: Pipeline[] = []
    const { config } = loaded
    const services = options.dryRun === true ? undefined : pluginServices(loaded, options, limits)
    try {
      // A store new in this config (or changed) connects before plugins set up (they may call it
      // then: the cache drops an earlier config's entries) and before the config takes traffic. A
      // reload whose new store's server refuses its credentials is refused; a start goes on.
      await services?.stores.settled(options.previous === undefined ? undefined : loaded)
      const routes: CompiledRoute[] = []
      for (const [i, r] of config.routes.entries()) {
        const uses = effectivePlugins(config.plugins, r.plugins)
        const pipeline = services === undefined ? describePipeline(uses, loaded.plugins) : await buildPipeline(r.name, r.match.path, (compilePathPattern(r.match.path) as PathPattern /* validated at load */).params, r.match.methods?.map(m => m.toUpperCase()), uses, loaded.plugins, services, log, pluginTimeoutMs(config), limits)
        pipelines.push(pipeline)
        const routeMetrics = services === undefined || config.metrics?.requests === false ? undefined : options.metrics?.requests.forRoute(r.name, r.upstream, r.metrics?.requests !== false)
        routes.push(compileRoute(r, i, upstreams.get(r.upstream) as Upstream, pipeline, log, routeMetrics))
      }
      const runtime = new Runtime(loaded, routes, upstreams, log, limits, services, services === undefined ? undefined : options.metrics)
      if (options.dryRun !== true) {
        runtime.#warnDashedRemoved()
        await runtime.#startUpstreamWork(options.metrics, options.healthChecks ?? true, options.previous)
      } else if (options.discovery === true) await runtime.#startUpstreamWork(undefined, false, options.previous)
      // The process's first config is in service once built; a reload's once it replaces the one before (catchUp).
      if (options.previous === undefined) {
        // Its routes and upstreams: what a build released unused leaves of the series it started goes (see Metrics.dropRetired).
        runtime.#metrics?.inService(new Set(routes.map(r => r.info.name)), upstreams)
        runtime.#tellShared('inService')
      }
      return runtime
    } catch (err) {
      await Promise.allSettled([...pipelines.map(p => p.dispose()), ...[...upstreams.values()].map(u => u.close())])
      if (services !== undefined) await releaseServices(services, pluginTimeoutMs(config), log)
      throw err
    }
  }

  /**
   * DNS discovery (the first answers awaited), active health checks, and upstream metrics, per
   * upstream; undone by retire() for what the next config dropped, by dispose() for the rest.
   * A DNS entry whose first lookup fails takes the addresses `previous` has for it (lastAddresses).
   */
  async #startUpstreamWork (metrics: Metrics | undefined, healthChecks: boolean, previous: Runtime | undefined): Promise<void> {
    const onHealth = (u: Upstream, url: string, healthy: boolean, reason?: string) => u.setTargetHealth(url, healthy, reason)
    // Nothing is followed until retire() names the next runtime.
    const followed = (u: Upstream, t: Target) => this.#next?.healthOf(u, t)
    for (const u of this.upstreams.values()) {
      this.#work.set(u.name, {
        discovery: startDnsDiscovery(u, this.log, undefined, source => this.#next?.addressesOf(u, source), previous?.lastAddresses(u)),
        checks: healthChecks && u.healthCheck !== undefined ? startHealthChecks([u], onHealth, followed) : undefined
      })
    }
    let unwatch = metrics?.watchUpstreams(this.upstreams)
    const stop = (names: string[]) => Promise.all(names.map(async name => {
      const w = this.#work.get(name)
      this.#work.delete(name)
      w?.discovery.stop()
      await w?.checks?.()
    }))
    this.#stopUpstreamWork = async () => { unwatch?.(); await stop([...this.#work.keys()]) }
    this.#retireUpstreamWork = async next => {
      unwatch?.()
      unwatch = undefined
      this.#next = next
      await stop([...this.#work.keys()].filter(name => !next.upstreams.has(name)))
    }
    await Promise.all([...this.#work.values()].map(w => w.discovery.ready))
  }

  /**
   * The active health this runtime's checks give `t`, a target of `u` in a config it replaced, if
   * they check it alike: a target at the same address with the same Host, in the upstream of the
   * same name, with the same healthCheck and TLS settings (a verdict is the address's: checking it
   * again in every config a reload retired only multiplies the checks). Else, or once its checks
   * stopped, that of the runtime that replaced this one in turn; undefined when none does.
   */
  healthOf (u: Upstream, t: Target): boolean | undefined {
    const mine = this.upstreams.get(u.name)
    const twin = mine !== undefined && this.#work.get(u.name)?.checks !== undefined &&
      isDeepStrictEqual(mine.healthCheck, u.healthCheck) && isDeepStrictEqual(mine.tls, u.tls)
      ? mine.targets.find(x => x.url === t.url && x.host === t.host)
      : undefined
    if (twin === undefined) return this.#next?.healthOf(u, t)
    // Retired too, this runtime may follow a later one: its verdict is the freshest.
    return this.#next?.healthOf(mine as Upstream, twin) ?? twin.healthy
  }

  /**
   * As healthOf, for DNS discovery: the addresses this runtime has found for entry `source` of `u`,
   * if it resolves the same entry (name, weight, interval) in the upstream of the same name.
   */
  addressesOf (u: Upstream, source: number): TargetAddress[] | undefined {
    const mine = this.upstreams.get(u.name)
    const discovery = this.#work.get(u.name)?.discovery
    const entry = u.config.targets[source]
    const i = mine === undefined ? -1 : mine.config.targets.findIndex(e => isDeepStrictEqual(e, entry))
    // Not while its own first lookup has not answered: the name itself is no better than the last addresses.
    if (i === -1 || discovery?.answered(i) !== true) return this.#next?.addressesOf(u, source)
    return this.#next?.addressesOf(mine as Upstream, i) ?? (mine as Upstream).targets.filter(t => t.source === i).map(t => ({ url: t.url, host: t.host, weight: t.weight }))
  }

  /**
   * For `u`, in the config a reload puts in place of this one, whose first lookup of an entry failed
   * or was empty: the addresses this runtime has for a `resolve: dns` entry of the same scheme, name, port
   * in the upstream of the same name, if its discovery has had any, with the new entry's weight (its
   * dnsInterval may differ too). A function of its own (not a closure of #startUpstreamWork, which
   * lives as long as the new runtime): discovery drops it after its first round, so that this
   * runtime can go.
   */
  lastAddresses (u: Upstream): (source: number) => TargetAddress[] | undefined {
    return source => {
      const mine = this.upstreams.get(u.name)
      const entry = u.config.targets[source]
      if (mine === undefined || entry === undefined) return undefined
      const origin = new URL(entry.url).origin
      const i = mine.config.targets.findIndex(e => e.resolve === 'dns' && new URL(e.url).origin === origin)
      if (i === -1 || this.#work.get(u.name)?.discovery.answered(i) !== true) return undefined
      return mine.targets.filter(t => t.source === i).map(t => ({ url: t.url, host: t.host, weight: entry.weight ?? 1 }))
    }
  }

  /**
   * A reload has put `next` in service. Upstreams it no longer has stop their DNS discovery and
   * health checks now, not when this runtime's last request ends (a WebSocket may keep it for hours);
   * the metrics are the new runtime's. An upstream it kept (by name: its Upstream is a new object
   * that inherited the targets' state) keeps its checks here while requests here may still pick a
   * target (a retry), until every one left has begun its response or is a tunnel (see #stopWhenDone):
   * only of targets `next` does not check alike, taking `next`'s verdicts for the others (healthOf;
   * DNS discovery likewise, addressesOf).
   * The series of routes, upstreams and targets `next` no longer has leave /metrics. With
   * server.reloadTunnelTimeout in `next`'s config, the requests still in flight here that long are cut (see closeTunnelsAfter).
   * The plugins are told this config is out of service (see #tellShared).
   */
  async retire (next: Runtime): Promise<void> {
    // In the turn next went into service (GatewayServer.swap), before anything here awaits.
    this.#tellShared('outOfService')
    this.#metrics?.inService(new Set(next.routes.map(r => r.info.name)), next.upstreams)
    const tunnelMs = next.loaded.config.server.reloadTunnelTimeout
    if (tunnelMs !== undefined) this.closeTunnelsAfter(toMs(tunnelMs))
    const retiring = this.#retireUpstreamWork(next)
    // With no request left, dispose() stops the rest at once.
    if (this.#inFlight > 0) this.#recheck = setInterval(() => { void this.#stopWhenDone() }, 1_000).unref()
    await Promise.all([retiring, this.#stopWhenDone()])
  }

  tunnelOpened (ex: Exchange): void {
    // Its upstream answered after server.reloadTunnelTimeout or a shutdown had closed the others: it goes too.
    if (this.#tunnelsClosed !== undefined) { this.#closeTunnel(ex, this.#tunnelsClosed); return }
    this.#tunnels.add(ex)
    if (this.#recheck !== undefined) void this.#stopWhenDone()
  }

  /**
   * Retired: the tunnels opened on this config (WebSockets may stay open for days) are closed `ms`
   * from now, those that open later at once, and its other requests still in flight are cut then
   * (see #cutLeft), so that a credential the reload revoked stops being relayed, and the config is
   * released. Not by default: a reload would close every WebSocket, and cut every long response.
   * Also for a config retired by an earlier reload (see GatewayServer.swap): the earliest deadline
   * wins, so that a later reload that lowers the timeout (revoking a credential) is not outlived by an
   * earlier one's longer timer.
   */
  closeTunnelsAfter (ms: number): void {
    const deadline = performance.now() + ms
    if (this.#inFlight === 0 || this.#tunnelsClosed !== undefined || deadline >= this.#tunnelDeadline) return
    this.#tunnelDeadline = deadline
    clearTimeout(this.#tunnelTimer)
    this.#tunnelTimer = setTimeout(() => {
      this.#closeTunnels('reload', () => { this.log.warn({ tunnels: this.#tunnels.size, afterMs: ms }, 'WebSockets still open on a replaced config closed (server.reloadTunnelTimeout)') })
      this.#cutLeft(ms)
    }, ms).unref()
  }

  /**
   * At server.reloadTunnelTimeout, the requests still in flight here that are no tunnel: a response
   * under way (an SSE stream, a download) relays what the revoked credential opened as long as a
   * tunnel would, and a request still unanswered would begin one; both are cut (logged `error:
   * reload`). An upgrade whose answer has not been sent is cut only if that answer is no 101 (a
   * revoked key's client needed only to add Upgrade to a streaming request): a 101's tunnel is
   * closed as it opens (tunnelOpened), its WebSocket told why.
   */
  #cutLeft (ms: number): void {
    let cut = 0
    for (const ex of [...this.#live, ...this.#begun]) {
      if (ex.status === 101) continue // a tunnel: see #closeTunnels
      if (ex.upgrade && !ex.res.headersSent) ex.cutUnlessSwitched('reload')
      else ex.cutOff('reload')
      if (ex.cut === 'reload') cut++
    }
    if (cut > 0) this.log.warn({ requests: cut, afterMs: ms }, 'requests still in flight on a replaced config cut (server.reloadTunnelTimeout)')
  }

  /**
   * A shutdown begins: its tunnels are closed now, as a reload's (WebSockets sent 1001 Going Away),
   * those that open later at once. A WebSocket never ends on its own: held, it would keep the stop
   * until the deadline, then be cut (1006).
   */
  closeTunnelsAtShutdown (): void {
    clearTimeout(this.#tunnelTimer)
    this.#closeTunnels('shutdown', () => { this.log.info({ tunnels: this.#tunnels.size }, 'shutting down: open WebSockets closed') })
  }

  /** Closes the tunnels open, and those that open from now on, for `cut`; `logged` first, if any is open. */
  #closeTunnels (cut: 'reload' | 'shutdown', logged: () => void): void {
    this.#tunnelsClosed = cut
    if (this.#tunnels.size === 0) return
    logged()
    for (const ex of this.#tunnels) this.#closeTunnel(ex, cut)
  }

  #closeTunnel (ex: Exchange, cut: 'reload' | 'shutdown'): void {
    this.#tunnels.delete(ex)
    ex.closeTunnel(cut)
  }

  /**
   * A retired runtime none of whose requests in flight will pick a target again (each has begun its
   * response, which is never retried, or is a tunnel) stops its DNS discovery and health checks. What
   * its requests still use (their connections, the plugins' onFinished) stays until dispose(). Checked
   * as its requests end and every second (a response begins without any call here).
   */
  async #stopWhenDone (): Promise<void> {
    if (this.#recheck === undefined || this.#mayPickAgain()) return
    this.#stopRechecks()
    await this.#stopUpstreamWork()
  }

  /** Whether an exchange in flight has not begun its response (nor become a tunnel); forgets those that have. */
  #mayPickAgain (): boolean {
    for (const ex of this.#live) {
      if (!ex.res.headersSent && ex.status !== 101) return true
      this.#live.delete(ex) // begun for good: not looked at again
      this.#begun.add(ex)
    }
    return false
  }

  #stopRechecks (): void {
    clearInterval(this.#recheck)
    this.#recheck = undefined
  }

  get inFlight (): number { return this.#inFlight }

  /** What GET /upstreams shows of this runtime, with what `retiring` runtimes still hold on the same upstreams' targets. */
  upstreamSnapshots (retiring: readonly Runtime[] = []): UpstreamSnapshot[] {
    return [...this.upstreams.values()].map(u => u.snapshot(retiring.flatMap(r => r.upstreams.get(u.name) ?? [])))
  }

  /** Entry point for every HTTP request. */
  handle (req: IncomingMessage, res: ServerResponse): void {
    try {
      this.#route(req, res, undefined)
    } catch (err) {
      this.#failed(req, res, err)
    }
  }

  /**
   * Entry point for upgrade requests (WebSocket): same matching and request plugins as HTTP. `socket`
   * must be free (no earlier response on it) and guarded against errors (see GatewayServer). An
   * answer other than a 101 (a refusal, the upstream's) ends the connection, which Node's timeouts
   * no longer watch: a client that keeps its side open is cut after a linger, once the whole answer is out.
   */
  handleUpgrade (req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const res = new DispositionFirstResponse(req) // as the listener's (see GatewayServer)
    res.shouldKeepAlive = false
    res.assignSocket(socket as never)
    // Tunnel bytes read with the request (`head`, not in the socket's buffer to hold its FIN back):
    // the client began the tunnel, and its FIN is half a close of it.
    if (head.length === 0) closeOnEnd(socket, res)
    // Node took its own drain listener off the socket it handed over: without this one, a response
    // past the socket's buffer would wait for a drain that never comes (as Node's socketOnDrain does).
    socket.on('drain', () => { if (res.writableNeedDrain) res.emit('drain') })
    res.once('finish', () => { socket.end(); destroyAfterLinger(socket) })
    try {
      // Node answers Expect (see GatewayServer's checkExpectation) on every request but an upgrade.
      if (failsExpectation(req)) this.refuse(req, res, GatewayError.EXPECTATION_FAILED)
      else this.#route(req, res, { socket, head })
    } catch (err) {
      this.#failed(req, res, err)
    }
  }

  /**
   * A bug of the gateway's before any exchange took the request: answered (500) and logged, never
   * left unanswered (Fastify would swallow the error, and the client would wait until it gives up).
   */
  #failed (req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const id = requestId(req.headers['x-request-id'])
    try {
      if (res.headersSent) res.destroy()
      else this.#reject(req, res, GatewayError.INTERNAL, id, req.url as string, true)
    } finally {
      logThrown(this.log, 'error', 'request failed in the gateway', err, { requestId: id })
    }
  }

  #route (req: IncomingMessage, res: ServerResponse, upgrade: { socket: Duplex, head: Buffer } | undefined): void {
    const id = requestId(req.headers['x-request-id'])
    const http2 = isHttp2(req)
    // Node's HTTP/1 parser also takes `HTTP/2.0` and `HTTP/0.9` request lines: neither is HTTP/1.x,
    // nor can what follows on the connection be trusted.
    if (req.httpVersionMajor !== 1 && !http2) { this.#reject(req, res, GatewayError.HTTP_VERSION_NOT_SUPPORTED, id, req.url as string, true); return }
    const fault = framingFault(req)
    if (fault !== undefined) { this.#reject(req, res, fault.error, id, req.url as string, fault.close); return }
    let url = req.url as string
    let host = req.headers.host
    if (http2) {
      if (headerListSize(req.rawHeaders) > this.#maxHeaderList) { this.#reject(req, res, GatewayError.HEADERS_TOO_LARGE, id, url); return }
      if (!HTTP1_METHODS.has(req.method as string)) { this.#reject(req, res, GatewayError.BAD_REQUEST, id, url); return }
      // :path is a path, never absolute-form (RFC 9113 8.3.1): the host is :authority's. nghttp2 holds
      // http(s) requests to that, not others (`:scheme: ftp`); `*` routes nowhere, as over HTTP/1.1.
      if (url.charCodeAt(0) !== 47) { this.#reject(req, res, GatewayError.BAD_PATH, id, url); return }
      // Only http(s) resources are served.
      if (!HTTP_SCHEME.test(req.headers[':scheme'] as string)) { this.#reject(req, res, GatewayError.BAD_REQUEST, id, url); return }
      // HTTP/2 names the host in :authority (a Host field may come too, and must agree: RFC 9113 8.3.1).
      // It becomes the Host of the request, as HTTP/1.1's upstream needs, and routes as Host does.
      const authority = req.headers[':authority'] as string | undefined
      if (authority !== undefined) {
        if (host !== undefined && !sameAuthority(host, authority, req.headers[':scheme'] as string | undefined)) { this.#reject(req, res, GatewayError.BAD_REQUEST, id, url); return }
        host = req.headers.host = authority
      }
    }
    if (url.charCodeAt(0) !== 47) {
      // absolute-form (RFC 9112 3.2.2): the authority is the host. The path is cut out by hand,
      // because URL parsing would resolve `..` and `\\` before our normalizer could judge them.
      const abs = ABSOLUTE_FORM.exec(url)
      // `*`, or another scheme (ftp://: Fastify's router refuses it so, but for an upgrade's, which comes here).
      if (abs === null) { this.#reject(req, res, GatewayError.BAD_PATH, id, url); return }
      host = abs[1]
      url = abs[2] === '/' ? url.slice(abs[0].length - 1) : '/' + url.slice(abs[0].length)
      // The Host header is ignored (RFC 9112 3.2.2): the upstream and X-Forwarded-Host must see
      // the host the route was matched on, not another one the backend could route by.
      req.headers.host = host
    }
    // RFC 9112 3.2: an HTTP/1.1 request without a Host, or with an invalid one, gets 400 (Node's own
    // check is off: see GatewayServer). A host an upstream's URL parser would read otherwise
    // (`a.example:x@b.example`, `evil.test/.a.example`) must never route.
    if (host === undefined ? req.httpVersionMinor === 1 /* HTTP/1.1: HTTP/2's is 0 */ : !isValidHost(host)) { this.#reject(req, res, GatewayError.BAD_HOST, id, url); return }
    const q = url.indexOf('?')
    const rawPath = q === -1 ? url : url.slice(0, q)
    const query = q === -1 ? '' : url.slice(q)
    const path = normalizePath(rawPath)
    if (path === undefined) { this.#reject(req, res, GatewayError.BAD_PATH, id, rawPath); return }
    // HTTP/1.1's parser refuses such bytes in the target; :path brings them, and the query is forwarded
    // as sent: a request line the upstream would refuse (or read otherwise).
    if (http2 && q !== -1 && NOT_PRINTABLE.test(query)) { this.#reject(req, res, GatewayError.BAD_REQUEST, id, path); return }
    const routedHost = normalizeHost(host)
    const match = this.router.match(routedHost, req.method as string, path, req.headers)
    if (match === undefined) {
      // RFC 9110 15.5.6: a resource that routes take with other methods answers 405 with their Allow.
      const allowed = this.router.allowedMethods(routedHost, path, req.headers)
      if (allowed.length === 0) this.#reject(req, res, GatewayError.NO_ROUTE, id, path)
      else this.#reject(req, res, GatewayError.METHOD_NOT_ROUTED, id, path, false, undefined, allowed.join(', '))
      return
    }
    if (upgrade !== undefined) {
      // RFC 9110 7.8: an HTTP/1.0 request's Upgrade is to be ignored, which Node's hand-over of the socket no longer allows.
      const refused = req.httpVersion === '1.0' ? GatewayError.UPGRADE_REFUSED : upgradeRefusal(match.route.upgrades, req.headers.upgrade)
      if (refused !== undefined) { this.#reject(req, res, refused, id, path, false, match.route); return }
    }
    if (refusesTrace(req.method as string, match.route)) { this.#reject(req, res, GatewayError.METHOD_NOT_ALLOWED, id, path, false, match.route); return }
    this.#start(match, req, res, routedHost, path, query, id, upgrade)
  }

  #start (match: RouteMatch<CompiledRoute>, req: IncomingMessage, res: ServerResponse, host: string, path: string, query: string, id: string,
    upgrade: { socket: Duplex, head: Buffer } | undefined): void {
    const trusted = trustsPeer(req, this.#trust)
    const headers = endToEndRequestHeaders(req.headers, trusted ? this.#removed : this.#removedUntrusted)
    if (this.#spelledRoutes !== undefined) this.#dropOtherSpellings(this.#spelledRoutes, headers, host, req.method as string, path)
    const clientIp = applyForwarded(req, headers, this.#trust, trusted)
    // server.traceContext: a caller whose trace is not continued starts a new one, as without a traceparent.
    const trace = traceContext((trusted ? this.#traceTrusted : this.#traceUntrusted) ? req.headers.traceparent : undefined)
    headers.traceparent = traceparent(trace)
    // A new trace (traceparent missing or invalid) starts without the caller's tracestate (W3C Trace
    // Context); a continued one's is sent within the spec's bounds (and dropped if invalid).
    if (headers.tracestate !== undefined) {
      const state = trace.parentSpanId === undefined ? undefined : boundedTracestate(headers.tracestate)
      if (state === undefined) delete headers.tracestate
      else headers.tracestate = state
    }
    const ex = new Exchange(this, match.route, req, res, path, query, match.params, id, headers, clientIp, trace, upgrade)
    this.#inFlight++
    this.#live.add(ex)
    match.route.metrics?.started()
    try {
      ex.start()
    } catch (err) {
      // A bug of the gateway's: answered (500) and logged; the response's close counts the exchange out, as for any other.
      ex.gatewayFailed(err)
    }
  }

  /**
   * A header a route matches on, under another spelling (`X_Admin` for `x-admin`, `X-Tenant` for
   * `x_tenant`): the router does not read it as that header, an upstream may (CGI, Rack and WSGI
   * servers read both as HTTP_X_ADMIN), so it would reach another route's upstream as the matched
   * one. Removed from the requests that route's host, path and methods take, whichever route took
   * them; kept elsewhere, where it routes nothing. A spelling some route matches on is kept. Only a
   * request with such a name pays more than a lookup per header.
   */
  #dropOtherSpellings (spelled: ReadonlyMap<string, readonly CompiledRoute[]>, headers: Record<string, unknown>, host: string, method: string, path: string): void {
    let routed: string | undefined
    for (const name in headers) {
      const routes = spelled.get(name.includes('_') ? name.replaceAll('_', '-') : name)
      if (routes === undefined || this.#matchedNames.has(name)) continue
      routed ??= routingForm(path)
      for (const r of routes) {
        if (takesAsideFromHeaders(r, host, method, routed)) { delete headers[name]; break }
      }
    }
  }

  /** At load: what #dropOtherSpellings takes from other routes' requests for a route matching a name with `_`, the dashed spelling most clients send. */
  #warnDashedRemoved (): void {
    for (const r of this.routes) {
      for (const [name] of r.headers) {
        const dashed = name.replaceAll('_', '-')
        if (dashed === name) continue
        const removed = this.#matchedNames.has(dashed) ? 'its other _ spellings' : `${dashed} and its other _ spellings`
        this.log.warn({ route: r.name, header: name, removed },
          `route "${r.name}" matches a header with _ in its name: ${removed} (the same header to CGI, Rack and WSGI servers) are removed from the requests its host, path and methods take, whichever route takes them`)
      }
    }
  }

  /** `route`: the route that matched but refuses the request before its plugins (an upgrade it does not take, TRACE). `allow`: see sendError. */
  #reject (req: IncomingMessage, res: ServerResponse, error: GatewayErrorKind, id: string, path: string, close = false, route?: CompiledRoute,
    allow?: string): void {
    sendError(res, error, id, close, allow)
    this.logRejected(error, id, this.clientIp(req), req.method, path, protocolOf(req), route)
  }

  /** The client's address as a routed request's line has it (server.trustProxy), for a request refused before routing. */
  clientIp (req: IncomingMessage): string {
    return clientAddress(req, this.#trust)
  }

  /** Answers `error` before routing (an expectation the gateway cannot meet), logged and counted as a rejected request. */
  refuse (req: IncomingMessage, res: ServerResponse, error: GatewayErrorKind): void {
    this.#reject(req, res, error, requestId(req.headers['x-request-id']), req.url as string)
  }

  /**
   * The access-log line and the count (route `(unmatched)`) of a request answered with a gateway error
   * before any route took it. `path` may be the raw request target: its query is never logged, as it
   * may carry credentials (key-auth's `query`). `clientIp`: see clientIp(), but for a request Node's parser refused.
   * `route`: the one that matched and refused it, named in the line and counted under it.
   */
  logRejected (error: GatewayErrorKind, id: string, clientIp: string | undefined, method?: string, path?: string, protocol?: string,
    route?: CompiledRoute): void {
    // Refused by the route it matched: counted under it (unless metrics.requests, the gateway's or the route's, is false).
    if (route !== undefined) route.metrics?.refused(method, error.status)
    else if (this.#countUnmatched) this.#metrics?.requests.unmatched(method, error.status)
    if (this.#accessLog) this.log.info({ route: route?.info.name, upstream: route?.info.upstream, method, path: path === undefined ? undefined : loggedTarget(path), protocol, status: error.status, error: error.code, requestId: id, clientIp }, 'request rejected')
  }

  finished (ex: Exchange): void {
    const whole = ex.sentWhole
    const cut = ex.cut ?? (this.#cutAtShutdown && !whole ? 'shutdown' : undefined)
    // 499: the client left. Cut short by the gateway: the status sent, else 503 at shutdown or reload,
    // 400 with an HTTP/2 connection cut for the client's abuse, or 408 for a body that stalled.
    const status = whole || ex.status === 101 ? ex.status
      : cut === undefined ? 499 : ex.res.headersSent ? ex.status : cut === 'shutdown' || cut === 'reload' ? 503 : cut === 'http2_cut' ? 400 : 408
    const elapsed = performance.now() - ex.startedAt
    ex.compiled.metrics?.finished(ex.method, status, elapsed / 1000, ex.upstreamSeconds, ex.requestBytes, ex.bytes)
    if (this.#accessLog) {
      ex.compiled.accessLog.write({
        target: ex.target?.url,
        tries: ex.tries > 1 ? ex.tries : undefined,
        method: ex.method,
        path: loggedPath(ex.path),
        protocol: protocolOf(ex.raw),
        status,
        error: cut,
        durationMs: Math.round(elapsed * 100) / 100,
        bytes: ex.bytes,
        requestId: ex.id,
        clientIp: ex.clientIp,
        consumer: consumerIdOf(ex.consumer),
        traceId: ex.trace.traceId,
        reqHeaders: this.#logHeaders ? redactHeaders(ex.clientHeaders, this.#redactedHeaders) : undefined,
        resHeaders: this.#logHeaders ? redactHeaders(ex.responseHeaders, this.#redactedHeaders) : undefined
      })
    }
    this.#live.delete(ex)
    this.#begun.delete(ex)
    if (ex.upgrade) this.#tunnels.delete(ex)
    if (--this.#inFlight === 0) this.#drained?.()
    else if (this.#recheck !== undefined) void this.#stopWhenDone()
    // Last: a plugin's code never stands between a request and its access line or its count in flight.
    ex.compiled.pipeline.onFinished?.(ex, status, cut)
    // After onFinished, where a tracing plugin decides at the latest whether it records the trace.
    ex.compiled.metrics?.traced(status, elapsed / 1000, ex.trace)
  }

  /** Counts a timeout of `kind` (see Metrics.timeouts). */
  timedOut (kind: string): void {
    this.#metrics?.timeouts.inc({ kind })
  }

  /** Counted as the upstream's busy refusals, under a reason of its own: its target may have connections free. */
  uploadSlotsBusy (ex: Exchange): void {
    this.#metrics?.upstreamBusy.inc({ upstream: ex.compiled.upstream.name, reason: 'upload-slots' })
  }

  /** Counts an HTTP/2 connection cut for abuse (see Http2Connections). */
  http2Cut (reason: string): void {
    this.#metrics?.http2Cut.inc({ reason })
  }

  cutShort (ex: Exchange): void {
    this.timedOut(ex.cut as string)
    // Over HTTP/2 only the stream is reset (the connection too if the client reads none of it: see resetIfUnread).
    const msg = isHttp2(ex.raw) ? 'client too slow: stream reset' : 'client too slow: connection closed'
    if (!this.#limits.allow(ex.cut as string, 'warn', { error: ex.cut }, msg)) return
    this.log.warn({ route: ex.route.name, target: ex.target?.url, requestId: ex.id, clientIp: ex.clientIp, error: ex.cut }, msg)
  }

  /** `failure`: what a hook threw, tagged with its plugin (PluginHookFailure); or a failure the exchange found (a reply it cannot send, a stream's error). */
  pluginFailed (ex: Exchange, failure: unknown): void {
    const hook = PluginHookFailure.is(failure) ? failure : undefined
    const err = hook === undefined ? failure : hook.thrown
    // The exchange is over (a hook that rejects after its timeout's 504, a failure after the client
    // left): nothing to answer, and no error to report, as a hook finishing late is ignored.
    if (ex.ended) {
      logThrown(this.log, 'debug', 'plugin failed after the request ended', err, { route: ex.route.name, plugin: hook?.plugin, requestId: ex.id })
      return
    }
    // Answered first, then logged whatever the plugin threw: called from undici's callbacks and event
    // listeners, a throw here would leave the client unanswered or end the process. The try is
    // aborted with an Error of the gateway's: onError and the onUpstreamTryEnd observers read it.
    try {
      ex.abortUpstream(new Error(describeThrown(err)))
      ex.fail(GatewayError.PLUGIN_FAILED)
    } finally {
      // One line per failure would let a client whose input makes a plugin throw page whoever watches errors.
      const route = ex.route.name
      const plugin = hook?.plugin
      const error = describeThrown(err).slice(0, MESSAGE_KEY)
      // Bounded per route and plugin: a client varying one plugin's errors cannot hide another's.
      if (this.#limits.allow(`${route}\0${plugin}\0${error}`, 'error', { route, plugin, err: { message: error } }, 'plugin failed', { key: `${route}\0${plugin}`, fields: { route, plugin } })) {
        logThrown(this.log, 'error', 'plugin failed', err, { route, plugin, requestId: ex.id })
      }
    }
  }

  pluginTimedOut (ex: Exchange, failure: PluginHookFailure): void {
    this.timedOut('request')
    const route = ex.route.name
    const { plugin } = failure
    // The gateway's message, naming the hook and the limit: a few per route and plugin.
    const error = describeThrown(failure.thrown)
    if (this.#limits.allow(`${route}\0${plugin}\0${error}`, 'warn', { route, plugin, err: { message: error } }, 'plugin timed out', { key: `${route}\0${plugin}`, fields: { route, plugin } })) {
      this.log.warn({ err: loggedThrown(failure.thrown), route, plugin, requestId: ex.id }, 'plugin timed out')
    }
    ex.abortUpstream(failure.thrown as Error)
    ex.fail(GatewayError.PLUGIN_TIMEOUT)
  }

  upstreamBodyInvalid (ex: Exchange, err: UpstreamBodyInvalid): void {
    const route = ex.route.name
    const target = ex.target?.url
    const msg = 'upstream body could not be read as sent'
    // A client can ask for such a body at will (a decoding bomb, once a request): limited as the upstream failures are.
    if (this.#limits.allow(`${route}\0${target ?? ''}`, 'warn', { route, target }, msg, { key: route, fields: { route } })) {
      this.log.warn({ err, route, target, requestId: ex.id }, msg)
    }
    ex.abortUpstream(err)
    ex.fail(GatewayError.UPSTREAM_BODY_INVALID)
  }

  /** Each failed try, retried or not: counted (a timeout) and logged with its target. */
  upstreamFailed (ex: Exchange, err: Error, retried: boolean): void {
    const timeout = TIMEOUT_KINDS[(err as { code?: string }).code ?? '']
    if (timeout !== undefined) this.timedOut(timeout)
    const { upstream } = ex.route
    const target = ex.target?.url
    const code = (err as { code?: string }).code
    const msg = upstreamFailureMessage(err)
    if (!this.#limits.allow(`${upstream}\0${target}\0${code}`, 'warn', { upstream, target, code }, msg)) return
    this.log.warn({ err, route: ex.route.name, target, requestId: ex.id, retried: retried ? true : undefined }, msg)
  }

  /**
   * Waits for in-flight requests (and open WebSockets) to end, then releases pools and plugins.
   * Once: a second call (say SIGINT after SIGTERM) gets the same promise.
   */
  dispose (): Promise<void> {
    return (this.#disposed ??= this.#dispose())
  }

  /** The shutdown's deadline has come: the requests still in flight are about to be cut. */
  cutAtShutdown (): void {
    this.#cutAtShutdown = true
  }

  /**
   * The end of a shutdown's deadline: every upstream connection is cut whatever it is doing, and
   * dispose() stops waiting for requests still counted in flight.
   */
  async destroy (): Promise<void> {
    this.#drained?.()
    await Promise.allSettled([...this.upstreams.values()].map(u => u.destroy()))
  }

  async #dispose (): Promise<void> {
    if (this.#inFlight > 0) await new Promise<void>(resolve => { this.#drained = resolve })
    clearTimeout(this.#tunnelTimer)
    this.#stopRechecks()
    await this.#stopUpstreamWork()
    await Promise.allSettled([...this.routes.map(r => r.pipeline.dispose()), ...[...this.upstreams.values()].map(u => u.close())])
    if (this.#services !== undefined) await releaseServices(this.#services, pluginTimeoutMs(this.loaded.config), this.log)
    // The lines its last requests had counted (a reload, a stop) are not to wait for their window's end.
    this.#limits.flush()
    // Its last requests may have counted again for a route the config in service no longer has.
    this.#metrics?.dropRetired()
  }
}

/** The stores, consumers, metrics, admin endpoints and shared values the plugins of one config get; its `limits`, flushed at its retirement. */
function pluginServices (loaded: LoadedConfig, options: { metrics?: Metrics, stores: StoreRegistry }, limits: LogLimiter): PluginServices & { lease: StoreLease } {
  const lease = options.stores.acquire(loaded.config.stores)
  return {
    lease,
    stores: lease,
    consumers: new Consumers(loaded.config.consumers),
    metrics: pluginMetrics(options.metrics?.registry ?? new Registry()),
    admin: new PluginAdminRoutes(),
    shared: new Map(),
    configsOf: name => configsOf(loaded.config, name),
    limits
  }
}

/**
 * An HTTP/1.1 request whose Expect names something other than 100-continue: Node's own test (its
 * continueExpression), for the requests it hands over unchecked (upgrades).
 */
function failsExpectation (req: IncomingMessage): boolean {
  const expect = req.headers.expect
  return expect !== undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && !/(?:^|\W)100-continue(?:$|\W)/i.test(expect)
}

/** How long a plugin's setup, or its dispose, may take (server.pluginTimeout). */
const pluginTimeoutMs = (config: LoadedConfig['config']): number =>
  config.server.pluginTimeout === undefined ? DEFAULT_PLUGIN_TIMEOUT_MS : toMs(config.server.pluginTimeout)

async function releaseServices (services: PluginServices, timeoutMs: number, log: Logger): Promise<void> {
  await disposeShared(services.shared, timeoutMs, log)
  await services.stores.release()
  // A plugin metric no live config asked for leaves /metrics, and its name is free again.
  services.metrics.release()
}
