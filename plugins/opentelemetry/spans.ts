import { isIP } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace, type Attributes, type HrTime, type Span } from '@opentelemetry/api'
import { millisToHrTime, TraceState } from '@opentelemetry/core'
import {
  ATTR_CLIENT_ADDRESS, ATTR_ERROR_TYPE, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_REQUEST_METHOD_ORIGINAL, ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_NETWORK_PEER_ADDRESS, ATTR_NETWORK_PEER_PORT, ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT, ATTR_URL_FULL, ATTR_URL_PATH, ATTR_URL_SCHEME, ATTR_USER_AGENT_ORIGINAL, ERROR_TYPE_VALUE_OTHER
} from '@opentelemetry/semantic-conventions'
import type { GatewayRequest, UpstreamTarget } from '../../src/index.ts'
import { boundedTracestate } from '../../src/proxy/trace-context.ts'
import type { Tracing } from './tracing.ts'

// Per-request state, in req.locals: the server span, the client span of the try under way, and
// the request's clock (below).
const SERVER = 'opentelemetry.server'
const CLIENT = 'opentelemetry.client'
const CLOCK = 'opentelemetry.clock'

/**
 * A span time from performance.now(). Every span of a request uses the wall-clock offset taken
 * when its server span started, so that they are ordered exactly (the SDK takes an offset per span,
 * from Date.now(), and a try could seem to end after its retry began), while the offset is still
 * fresh (performance time drifts from the wall clock over days).
 */
const spanTime = (req: GatewayRequest, at: number): HrTime => millisToHrTime((req.locals[CLOCK] as number) + at)

// HTTP semantic conventions: methods outside this set are reported as _OTHER (with the original beside).
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE'])

// W3C Trace Context's random-trace-id flag, which the API's TraceFlags lacks (and the SDK's spans drop).
const RANDOM_TRACE_ID = 0x02

/** server.address and server.port of a Host header value (`example.com:8080`, `[::1]:8080`). */
export function hostAndPort (host: string): { address: string, port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host)
  if (m === null) return { address: host, port: undefined }
  const address = (m[1] as string).replace(/^\[(.*)\]$/, '$1')
  return { address, port: m[2] === undefined ? undefined : Number(m[2]) }
}

// Attributes of a target, computed on its first try (targets live as long as their config).
const targetAttributes = new WeakMap<UpstreamTarget, Attributes>()
function attributesOf (target: UpstreamTarget): Attributes {
  let attributes = targetAttributes.get(target)
  if (attributes === undefined) {
    const url = new URL(target.url)
    const address = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80)
    attributes = { [ATTR_SERVER_ADDRESS]: address, [ATTR_SERVER_PORT]: port }
    if (isIP(address) !== 0) Object.assign(attributes, { [ATTR_NETWORK_PEER_ADDRESS]: address, [ATTR_NETWORK_PEER_PORT]: port })
    targetAttributes.set(target, attributes)
  }
  return attributes
}

/** The caller's tracestate, kept on the server span's parent: bounded as the upstream gets it. */
function callerTraceState (req: GatewayRequest): TraceState | undefined {
  const header = req.clientHeaders.tracestate
  const bounded = header === undefined ? undefined : boundedTracestate(header)
  return bounded === undefined ? undefined : new TraceState(bounded)
}

/** error.type of a failed try: the error's code (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT...), else _OTHER. */
const errorType = (err: Error): string => (err as { code?: unknown }).code?.toString() ?? ERROR_TYPE_VALUE_OTHER

/**
 * The spans of one route's requests: a server span per request (the caller's span its parent, the
 * gateway's span id from req.trace its id), a client span per upstream try, its child. Each try
 * sends the upstream a traceparent naming its own client span.
 */
export class RouteSpans {
  readonly #tracing: Tracing
  readonly #route: string
  readonly #httpRoute: string

  constructor (tracing: Tracing, route: { name: string, path: string }) {
    this.#tracing = tracing
    this.#route = route.name
    this.#httpRoute = route.path
  }

  /** The request's server span, started (at the request's own start) on first use. */
  #server (req: GatewayRequest): Span {
    const existing = req.locals[SERVER] as Span | undefined
    if (existing !== undefined) return existing
    const t = req.trace
    const parent = t.parentSpanId === undefined ? ROOT_CONTEXT
      : trace.setSpanContext(ROOT_CONTEXT, { traceId: t.traceId, spanId: t.parentSpanId, traceFlags: parseInt(t.flags, 16) & TraceFlags.SAMPLED, isRemote: true, traceState: callerTraceState(req) })
    const method = KNOWN_METHODS.has(req.method) ? req.method : '_OTHER'
    const raw = req.raw
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: method,
      [ATTR_URL_PATH]: req.path,
      [ATTR_URL_SCHEME]: (raw.socket as TLSSocket).encrypted === true ? 'https' : 'http',
      [ATTR_HTTP_ROUTE]: this.#httpRoute,
      [ATTR_CLIENT_ADDRESS]: req.clientIp,
      [ATTR_NETWORK_PEER_ADDRESS]: raw.socket.remoteAddress,
      [ATTR_NETWORK_PEER_PORT]: raw.socket.remotePort,
      // Semantic conventions spell HTTP/2 "2", where Node says "2.0".
      [ATTR_NETWORK_PROTOCOL_VERSION]: raw.httpVersion === '2.0' ? '2' : raw.httpVersion,
      [ATTR_USER_AGENT_ORIGINAL]: req.clientHeaders['user-agent'],
      'portcullis.route': this.#route,
      'portcullis.request_id': req.id
    }
    if (method === '_OTHER') attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = req.method
    const host = req.clientHeaders.host
    if (host !== undefined) {
      const { address, port } = hostAndPort(host)
      attributes[ATTR_SERVER_ADDRESS] = address
      if (port !== undefined) attributes[ATTR_SERVER_PORT] = port
    }
    req.locals[CLOCK] = Date.now() - performance.now()
    const ids = this.#tracing.ids
    ids.preset(t.traceId, t.spanId)
    try {
      const name = `${method === '_OTHER' ? 'HTTP' : method} ${this.#httpRoute}`
      const span = req.locals[SERVER] = this.#tracing.tracer.startSpan(name, { kind: SpanKind.SERVER, startTime: spanTime(req, req.startedAt), attributes }, parent)
      // The sampler's decision: only a recorded trace becomes an exemplar (RouteMetrics.traced).
      t.sampled = (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0
      return span
    } finally {
      ids.clear()
    }
  }

  tryStarted (req: GatewayRequest, target: UpstreamTarget, attempt: number): void {
    const server = this.#server(req)
    const method = KNOWN_METHODS.has(req.method) ? req.method : '_OTHER'
    const attributes: Attributes = {
      ...attributesOf(target),
      [ATTR_HTTP_REQUEST_METHOD]: method,
      // Without the query: it may carry credentials.
      [ATTR_URL_FULL]: target.url + req.upstreamPath,
      'portcullis.upstream': req.route.upstream
    }
    if (method === '_OTHER') attributes[ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = req.method
    if (attempt > 1) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = attempt - 1
    const span = this.#tracing.tracer.startSpan(method === '_OTHER' ? 'HTTP' : method,
      { kind: SpanKind.CLIENT, startTime: spanTime(req, performance.now()), attributes }, trace.setSpan(ROOT_CONTEXT, server))
    req.locals[CLIENT] = span
    const sc = span.spanContext()
    // The caller's random flag goes on, as without this plugin (the trace id is the caller's).
    const flags = (sc.traceFlags & TraceFlags.SAMPLED) | (parseInt(req.trace.flags, 16) & RANDOM_TRACE_ID)
    req.headers.traceparent = `00-${sc.traceId}-${sc.spanId}-0${flags}`
  }

  tryEnded (req: GatewayRequest, status: number | undefined, error: Error | undefined): void {
    const span = req.locals[CLIENT] as Span | undefined
    if (span === undefined) return
    req.locals[CLIENT] = undefined
    if (status !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
    if (error !== undefined) {
      span.setAttribute(ATTR_ERROR_TYPE, errorType(error))
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message })
    } else if (status !== undefined && status >= 400) {
      span.setAttribute(ATTR_ERROR_TYPE, String(status))
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.end(spanTime(req, performance.now()))
  }

  /** `cut`: why the gateway cut the answer short (the access log's `error`), its error.type then, whatever the status. */
  finished (req: GatewayRequest, status: number, cut: string | undefined): void {
    const span = this.#server(req)
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status)
    // A server span is an error for 5xx or an answer cut short: a 4xx is the client's mistake, not the gateway's.
    if (status >= 500 || cut !== undefined) {
      span.setAttribute(ATTR_ERROR_TYPE, cut ?? String(status))
      span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.end(spanTime(req, performance.now()))
  }
}
