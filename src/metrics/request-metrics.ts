import { STATUS_CODES } from 'node:http'
import { Gauge, type Counter, type Registry } from 'prom-client'
import { FastCounter } from './fast-counter.ts'
import { BucketHistogram, type HistogramSeries } from './bucket-histogram.ts'
import type { TraceContext } from '../proxy/trace-context.ts'

/** The `route` label of requests no route took (404, bad paths, parser errors): not a valid route name, so never one's. */
export const UNMATCHED_ROUTE = '(unmatched)'

// Methods outside this set are counted as OTHER, so a client cannot grow the label set.
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const methodLabel = (m: string | undefined) => m !== undefined && KNOWN_METHODS.has(m) ? m : 'OTHER'

// Registered codes (Node's STATUS_CODES) and the gateway's own 499 (client gone) are their own
// `status` label; any other folds into its class (`2xx`; a plugin's reply may go up to 999): an
// upstream reflecting a client-chosen code (httpbin's /status/:code) cannot grow the label set.
// Built once: a lookup per request.
const STATUS_LABELS: readonly string[] = Array.from({ length: 900 }, (_, i) => {
  const code = String(i + 100)
  return code === '499' || code in STATUS_CODES ? code : `${code[0] as string}xx`
})
const statusLabel = (status: number): string => STATUS_LABELS[status - 100] ?? String(status)

// 0.5 ms to 30 s: a gateway's own overhead sits at the low end, slow upstreams at the high end.
const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

type CounterChild = ReturnType<Counter<string>['labels']>

/** Request metrics: every request by route, method and status; latencies; bytes; in flight. */
export class RequestMetrics {
  readonly requests: Counter<'route' | 'method' | 'status'>
  readonly duration: BucketHistogram
  readonly upstreamDuration: BucketHistogram
  readonly overhead: BucketHistogram
  readonly responseBytes: Counter<'route'>
  readonly requestBytes: Counter<'route'>
  /** Requests being answered by this process (all runtimes). */
  inFlight = 0

  constructor (registry: Registry) {
    const registers = [registry]
    this.requests = new FastCounter({ name: 'portcullis_http_requests_total', help: `Requests answered, by route (${UNMATCHED_ROUTE} when none matched), method and status.`, labelNames: ['route', 'method', 'status'], registers })
    // Exemplars (OpenMetrics) carry the trace id of a request per bucket: from a latency spike to its trace.
    this.duration = new BucketHistogram({ name: 'portcullis_http_request_duration_seconds', help: 'The whole request as the client sees it, by route.', label: 'route', buckets: SECONDS, exemplars: true, registry })
    this.upstreamDuration = new BucketHistogram({ name: 'portcullis_upstream_response_duration_seconds', help: 'From a request sent to an upstream to its response headers, by upstream (each try).', label: 'upstream', buckets: SECONDS, registry })
    this.overhead = new BucketHistogram({ name: 'portcullis_gateway_overhead_seconds', help: 'Time spent in the gateway itself: the whole request minus the wait for upstream response headers, by route.', label: 'route', buckets: SECONDS, registry })
    this.responseBytes = new FastCounter({ name: 'portcullis_http_response_bytes_total', help: 'Response body bytes sent to clients, by route.', labelNames: ['route'], registers })
    this.requestBytes = new FastCounter({ name: 'portcullis_http_request_bytes_total', help: 'Request body bytes received from clients, by route.', labelNames: ['route'], registers })
    const inFlight = () => this.inFlight
    // Read at scrape time: the hot path only counts a plain number.
    new Gauge({ name: 'portcullis_http_requests_in_flight', help: 'Requests being answered right now.', registers, collect () { this.set(inFlight()) } })
  }

  /** A request no route took. */
  unmatched (method: string | undefined, status: number): void {
    // prom-client's own inc: a child per call would cost more than it saves.
    this.requests.inc({ route: UNMATCHED_ROUTE, method: methodLabel(method), status: statusLabel(status) })
  }

  /**
   * The metrics of one route (of one config). Its series appear at its first request, not here: a
   * gateway of thousands of routes exposes those of the routes that have traffic. `counted` false
   * (the route's `metrics.requests`): in no metric by route; it still counts in flight, and its
   * upstream's response times.
   */
  forRoute (route: string, upstream: string, counted = true): RouteMetrics {
    return new RouteMetrics(this, route, upstream, counted)
  }
}

/** One route's series, resolved together at its first request (see RouteMetrics). */
class RouteSeries {
  /** Counters by method label, then by status: resolved the first time each pair is seen. */
  readonly byMethod = new Map<string, CounterChild[]>()
  readonly duration: HistogramSeries
  readonly overhead: HistogramSeries
  readonly responseBytes: CounterChild
  readonly requestBytes: CounterChild

  constructor (m: RequestMetrics, route: string) {
    this.duration = m.duration.series(route)
    this.overhead = m.overhead.series(route)
    this.responseBytes = m.responseBytes.labels(route)
    this.requestBytes = m.requestBytes.labels(route)
    // At 0 with the histograms: a FastCounter's entry is born at its first inc, and a route's first
    // upload (or body sent) after days of GETs (or 204s) would start its series above 0, unseen by increase().
    this.responseBytes.inc(0)
    this.requestBytes.inc(0)
  }

  /** The counters by status of `method`, whose label is `label`. */
  statuses (label: string): CounterChild[] {
    let byStatus = this.byMethod.get(label)
    if (byStatus === undefined) this.byMethod.set(label, byStatus = [])
    return byStatus
  }
}

/**
 * One route's series. Label lookups happen once per route and config, at its first request (the
 * series of a route without traffic would be tens of zeros in every scrape), then are kept here.
 * A reload's next config finds the entries of a kept route again, so counts go on.
 */
export class RouteMetrics {
  readonly #m: RequestMetrics
  readonly #route: string
  readonly #upstreamName: string
  readonly #counted: boolean
  #series: RouteSeries | undefined
  #upstream: HistogramSeries | undefined

  constructor (m: RequestMetrics, route: string, upstream: string, counted: boolean) {
    this.#m = m
    this.#route = route
    this.#upstreamName = upstream
    this.#counted = counted
  }

  started (): void { this.#m.inFlight++ }

  /** A request the route matched but refused before its plugins ran: counted, with no latency to observe. */
  refused (method: string | undefined, status: number): void {
    if (this.#counted) this.#m.requests.inc({ route: this.#route, method: methodLabel(method), status: statusLabel(status) })
  }

  /** One try's wait for response headers: by upstream, so observed whether the route is counted or not. */
  upstreamAnswered (seconds: number): void {
    (this.#upstream ??= this.#m.upstreamDuration.series(this.#upstreamName)).observe(seconds)
  }

  finished (method: string, status: number, seconds: number, upstreamSeconds: number, requestBytes: number, responseBytes: number): void {
    this.#m.inFlight--
    if (!this.#counted) return
    const s = this.#series ??= new RouteSeries(this.#m, this.#route)
    // Known methods are their own label: one lookup; any other is OTHER's.
    const byStatus = s.byMethod.get(method) ?? s.statuses(methodLabel(method))
    const counter = byStatus[status] ??= this.#m.requests.labels(this.#route, methodLabel(method), statusLabel(status))
    counter.inc()
    // A WebSocket (101) lasts as long as its session: no latency, it would burn the latency SLO.
    if (status !== 101) {
      s.duration.observe(seconds)
      s.overhead.observe(seconds - upstreamSeconds)
    }
    if (responseBytes > 0) s.responseBytes.inc(responseBytes)
    if (requestBytes > 0) s.requestBytes.inc(requestBytes)
  }

  /**
   * The request's trace as the exemplar of its latency bucket, after finished() and the plugins'
   * onFinished: a tracing plugin has decided by then (trace.sampled). A trace it does not record
   * leaves the bucket's exemplar as it was; without such a plugin, every request's trace id is
   * one (the access log's traceId).
   */
  traced (status: number, seconds: number, trace: TraceContext): void {
    if (status !== 101 && trace.sampled !== false) this.#series?.duration.exemplar(seconds, trace.traceId)
  }
}
