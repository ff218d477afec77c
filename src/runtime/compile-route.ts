import type { Logger } from 'pino'
import { toMs } from '../config/duration.ts'
import { AccessLog } from '../logging/access-log.ts'
import type { RouteConfig } from '../config/schema.ts'
import { parseHostPattern, type HostPattern } from '../routing/host-pattern.ts'
import { compilePathPattern, compileRewrite, type PathPattern } from '../routing/path-pattern.ts'
import type { Matchable } from '../routing/router.ts'
import type { Pipeline } from '../plugins/pipeline.ts'
import type { Upstream } from '../upstreams/upstream.ts'
import type { RouteMetrics } from '../metrics/request-metrics.ts'

/** A route with everything derived from its config computed once, at load time. */
export interface CompiledRoute extends Matchable {
  readonly name: string
  readonly info: { readonly name: string, readonly upstream: string }
  readonly upstream: Upstream
  readonly pipeline: Pipeline
  /** The path sent upstream, from the normalized request path and the match's params. */
  readonly upstreamPath: (path: string, params: Record<string, string>) => string
  /** 'client' keeps the client's Host, 'target' uses the target's, any other string is sent as is. */
  readonly host: 'client' | 'target' | { value: string }
  readonly websocket: boolean
  /** Upgrade protocols the route tunnels, lower-cased (`websocket` unless turned off, and those of `upgrade`). */
  readonly upgrades: ReadonlySet<string>
  /** The response (headers) timeout in ms, kept by undici's coarse timers: 0 when `preciseHeadersTimeout` keeps it. */
  readonly headersTimeout: number
  /** A short response timeout (under PRECISE_BELOW_MS), kept by a timer of our own; else 0. */
  readonly preciseHeadersTimeout: number
  /** The response timeout, whoever keeps it (0: none). */
  readonly responseTimeout: number
  readonly bodyTimeout: number
  /** The whole request, in ms; 0 is no limit. */
  readonly requestTimeout: number
  /** Access-log lines of this route: route and upstream are serialized once, here, not per request. */
  readonly accessLog: AccessLog
  /** Request metrics of this route (undefined when off, and for dry runs). */
  readonly metrics: RouteMetrics | undefined
}

/**
 * undici checks its timeouts on a ticker of about half a second, so one can fire up to a second
 * late: fine for the 60 s default, not for `response: 250ms`. Shorter ones get a timer per request.
 */
const PRECISE_BELOW_MS = 10_000

export function compileRoute (config: RouteConfig, index: number, upstream: Upstream, pipeline: Pipeline, log: Logger, metrics?: RouteMetrics): CompiledRoute {
  const path = compilePathPattern(config.match.path) as PathPattern // validated at load
  const hostList = config.match.host === undefined ? [] : Array.isArray(config.match.host) ? config.match.host : [config.match.host]
  const headersTimeout = config.timeouts?.response === undefined ? upstream.timeouts.response : toMs(config.timeouts.response)
  const precise = headersTimeout > 0 && headersTimeout < PRECISE_BELOW_MS
  return {
    name: config.name,
    index,
    info: Object.freeze({ name: config.name, upstream: upstream.name }),
    hosts: hostList.map(h => parseHostPattern(h) as HostPattern),
    path,
    methods: methodSet(config.match.methods),
    headers: Object.entries(config.match.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    upstream,
    pipeline,
    upstreamPath: pathMapper(config, path),
    host: config.preserveHost === true ? 'client' : config.hostHeader !== undefined ? { value: config.hostHeader } : 'target',
    websocket: config.websocket ?? true,
    upgrades: upgradeSet(config),
    headersTimeout: precise ? 0 : headersTimeout,
    preciseHeadersTimeout: precise ? headersTimeout : 0,
    responseTimeout: headersTimeout,
    bodyTimeout: config.timeouts?.idle === undefined ? upstream.timeouts.idle : toMs(config.timeouts.idle),
    requestTimeout: config.timeouts?.request === undefined ? upstream.timeouts.request : toMs(config.timeouts.request),
    accessLog: new AccessLog(log.child({ route: config.name, upstream: upstream.name })),
    metrics
  }
}

function methodSet (methods: string[] | undefined): Set<string> | undefined {
  if (methods === undefined) return undefined
  const set = new Set(methods.map(m => m.toUpperCase()))
  if (set.has('GET')) set.add('HEAD')
  return set
}

function pathMapper (config: RouteConfig, pattern: PathPattern): CompiledRoute['upstreamPath'] {
  if (config.rewrite !== undefined) return compileRewrite(config.rewrite, pattern.params) as CompiledRoute['upstreamPath']
  const prefix = config.stripPrefix
  if (prefix === undefined || prefix === '/') return path => path
  // A prefix with a character a request may send escaped (`/v1:x` as `/v1%3Ax`, routed alike):
  // taken off by segments, which both spellings share.
  if (PCHARS.test(prefix)) {
    const n = prefix.split('/').length
    return path => '/' + path.split('/').slice(n).join('/')
  }
  return path => path.length === prefix.length ? '/' : path.slice(prefix.length)
}

/** The characters routingForm decodes: a path may hold them as they are or escaped. */
const PCHARS = /[!$&'()*+,=:@]/

function upgradeSet (config: RouteConfig): Set<string> {
  const set = new Set((config.upgrade ?? ['websocket']).map(p => p.toLowerCase()))
  if (config.websocket === false) set.delete('websocket')
  return set
}
