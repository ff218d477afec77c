import { createNoopMeter, type Attributes, type Meter, type MeterProvider } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import type { PluginMetrics } from '../../src/index.ts'
import type { Throttle } from './export-connections.ts'

// The batch processor reports what became of each span on this semconv counter (its self-observability).
const SPANS_PROCESSED = 'otel.sdk.processor.span.processed'
// The error.type (the error's name) of a batch the exporter refused as another export was under way.
const EXPORT_BUSY = 'export_busy'
// The error.type of a batch refused while the endpoint's throttling answer (429, 503) asks to wait.
const EXPORT_THROTTLED = 'export_throttled'
/** The longest wait a throttling answer gets, whatever its Retry-After says: and the fallback backoff's cap. */
const MAX_PAUSE_MS = 60_000
/** The first wait after a throttling answer without a (valid) Retry-After; doubled at each one after it. */
const FIRST_BACKOFF_MS = 1_000

/**
 * The batch span processor's own accounting, into portcullis_opentelemetry_spans_total{result}:
 * exported, failed (the export was refused or timed out) and dropped (the queue was full, or the
 * batch came while another export was under way, or while the endpoint asked to wait). The
 * processor reports through an OpenTelemetry meter; this one forwards that counter to prom-client.
 */
export function spanAccounting (metrics: PluginMetrics): MeterProvider {
  const spans = metrics.counter({
    name: 'portcullis_opentelemetry_spans_total',
    help: 'Spans handed to the OTLP exporter, by result: exported, failed (export refused or timed out), dropped (export queue full, another export under way, or the endpoint asked to wait: 429/503 Retry-After).',
    labelNames: ['result']
  })
  const results = { exported: spans.labels('exported'), failed: spans.labels('failed'), dropped: spans.labels('dropped') }
  const noop = createNoopMeter()
  const meter: Meter = Object.assign(Object.create(noop) as Meter, {
    createCounter (name: string, options?: object) {
      if (name !== SPANS_PROCESSED) return noop.createCounter(name, options)
      return {
        add (count: number, attributes?: Attributes) {
          const error = attributes?.['error.type']
          ;(error === undefined ? results.exported : error === 'queue_full' || error === EXPORT_BUSY || error === EXPORT_THROTTLED ? results.dropped : results.failed).inc(count)
        }
      }
    }
  })
  return { getMeter: () => meter }
}

/** Characters of a collector's answer a failure line shows: it may be megabytes, and echo the export's headers (Authorization). */
const MAX_LOGGED_DATA = 1024

/** An export's error as the failure line shows it: type, message, code, and the start of the collector's answer (OTLPExporterError's data). */
function loggedError (error: Error | undefined): object | undefined {
  if (error === undefined) return undefined
  // Without a prototype, pino's serializer takes `type` from `name`.
  const shown = Object.assign(Object.create(null) as Record<string, unknown>, { message: error.message })
  Object.defineProperty(shown, 'name', { value: error.name })
  const { code, data } = error as { code?: unknown, data?: unknown }
  if (code !== undefined) shown.code = code
  if (typeof data === 'string') shown.data = data.length <= MAX_LOGGED_DATA ? data : `${data.slice(0, MAX_LOGGED_DATA)}…(+${data.length - MAX_LOGGED_DATA} characters)`
  return shown
}

// An IMF-fixdate (RFC 9110 5.6.7), the form a server sends: Date.parse alone reads `-5` or `abc 12` as a date.
const HTTP_DATE = /^\s*[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\s*$/

/**
 * The milliseconds a Retry-After (delta-seconds or HTTP-date) asks to wait; undefined if it is not
 * one, or asks for no wait (0, a past date): the doubling backoff then, not a collector polled at once.
 */
export function retryAfterMs (retryAfter: string | undefined): number | undefined {
  if (retryAfter === undefined) return undefined
  const ms = /^\s*\d+\s*$/.test(retryAfter) ? Number(retryAfter) * 1000 : HTTP_DATE.test(retryAfter) ? Date.parse(retryAfter) - Date.now() : NaN
  return ms > 0 ? ms : undefined
}

/** What the export lines name: the endpoint (its secrets hidden) and the routes whose spans go there. */
export interface ExportTarget {
  readonly endpoint: string
  readonly routes: readonly string[]
}

/**
 * An exporter that ends each export at the timeout, whatever the OTLP exporter still waits for
 * (its own timeout is an idle timer: a collector that trickles its reply never reaches it), and
 * logs when exports start failing (once, with the error) and when they work again: a line per
 * outage, not per batch. A late answer to an export that already ended changes nothing.
 * One export at a time, until dispose: a batch that comes while the OTLP exporter still sends the
 * last one is refused at once, its spans dropped. An export the endpoint throttled (429 or 503,
 * OTLP's throttling) stops sending for its Retry-After, or a backoff doubling from 1 s without one,
 * at most 60 s: each batch until then is refused at once, its spans dropped.
 */
export class LoggedExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #log: Logger
  readonly #target: ExportTarget
  readonly #timeoutMs: number
  /** The exports under way, each settling once it ended. */
  readonly #running = new Set<Promise<ExportResult>>()
  /** Exports the OTLP exporter has not given up yet (each cut by `timeout`, export-connections.ts). */
  #sending = 0
  #parallel = false
  #failing = false
  readonly #takeThrottle: () => Throttle | undefined
  /** Date.now() from which batches are sent again after a throttling answer. */
  #resumeAt = 0
  #backoffMs = FIRST_BACKOFF_MS

  constructor (inner: SpanExporter, log: Logger, target: ExportTarget, timeoutMs: number, takeThrottle: () => Throttle | undefined) {
    this.#inner = inner
    this.#takeThrottle = takeThrottle
    this.#log = log
    this.#target = target
    this.#timeoutMs = timeoutMs
  }

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    // Upstream bug (@opentelemetry/sdk-trace BatchSpanProcessorBase._maybeStartTimer): each failed export leaves one more running in parallel.
    if (this.#sending > 0 && !this.#parallel) {
      done({ code: ExportResultCode.FAILED, error: Object.assign(new Error('another span export is under way'), { name: EXPORT_BUSY }) })
      return
    }
    if (Date.now() < this.#resumeAt) {
      done({ code: ExportResultCode.FAILED, error: Object.assign(new Error('the endpoint asked to wait (Retry-After)'), { name: EXPORT_THROTTLED }) })
      return
    }
    // A late answer to an earlier export (after its timeout) throttles none made since.
    if (this.#sending === 0) this.#takeThrottle()
    this.#sending++
    const running = new Promise<ExportResult>(resolve => {
      const timer = setTimeout(() => { resolve({ code: ExportResultCode.FAILED, error: new Error(`OTLP export timed out after ${this.#timeoutMs} ms`) }) }, this.#timeoutMs)
      this.#inner.export(spans, result => { this.#sending--; clearTimeout(timer); resolve(result) })
    })
    this.#running.add(running)
    void running.then(result => {
      this.#running.delete(running)
      this.#logged(result, result.code === ExportResultCode.SUCCESS ? undefined : this.#throttled())
      done(result)
    })
  }

  /** After a failed export: if the endpoint throttled it, the pause it starts. */
  #throttled (): { status: number, resumesAt: string } | undefined {
    const throttle = this.#takeThrottle()
    if (throttle === undefined) return undefined
    const asked = retryAfterMs(throttle.retryAfter)
    this.#resumeAt = Date.now() + Math.min(asked ?? this.#backoffMs, MAX_PAUSE_MS)
    if (asked === undefined) this.#backoffMs = Math.min(2 * this.#backoffMs, MAX_PAUSE_MS)
    return { status: throttle.status, resumesAt: new Date(this.#resumeAt).toISOString() }
  }

  #logged (result: ExportResult, throttled: { status: number, resumesAt: string } | undefined): void {
    if (result.code !== ExportResultCode.SUCCESS && !this.#failing) {
      this.#failing = true
      const paused = throttled === undefined ? '' : `; it answered ${throttled.status}: sending resumes at ${throttled.resumesAt}`
      this.#log.warn({ err: loggedError(result.error), endpoint: this.#target.endpoint, routes: this.#target.routes, ...throttled }, `span export failed: spans are dropped until the endpoint answers (portcullis_opentelemetry_spans_total)${paused}`)
    } else if (result.code === ExportResultCode.SUCCESS && this.#failing) {
      this.#failing = false
      this.#backoffMs = FIRST_BACKOFF_MS
      this.#log.info({ endpoint: this.#target.endpoint, routes: this.#target.routes }, 'span export works again')
    }
  }

  /** From now on (the pipeline's dispose), every batch is sent: the queued ones side by side. */
  sendAll (): void { this.#parallel = true }

  /** Waits for the exports under way, each over by the timeout. */
  async forceFlush (): Promise<void> {
    await Promise.all([...this.#running])
  }

  /**
   * forceFlush(). The OTLP exporter's shutdown() is not called: it only waits for its requests,
   * which closing the exporter's connections ends (tracing.ts).
   */
  shutdown (): Promise<void> { return this.forceFlush() }
}
