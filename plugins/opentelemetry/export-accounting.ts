import { createNoopMeter, type Attributes, type Meter, type MeterProvider } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import type { PluginMetrics } from '../../src/index.ts'
import type { ExportConnections } from './export-connections.ts'
import type { Pause } from './throttling.ts'

// The batch processor reports what became of each span on this semconv counter (its self-observability).
const SPANS_PROCESSED = 'otel.sdk.processor.span.processed'
// The error.type (the error's name) of a batch the exporter refused as another export was under way.
const EXPORT_BUSY = 'export_busy'
// The error.type of a batch refused while the endpoint's throttling answer (429, 503) asks to wait.
const EXPORT_THROTTLED = 'export_throttled'

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

/** Characters of a collector's answer a failure line shows: it may be megabytes. */
const MAX_LOGGED_ANSWER = 1024

/** An export's error as the failure line shows it: type, message and code. */
function loggedError (error: Error | undefined): object | undefined {
  if (error === undefined) return undefined
  // Without a prototype, pino's serializer takes `type` from `name`.
  const shown = Object.assign(Object.create(null) as Record<string, unknown>, { message: error.message })
  Object.defineProperty(shown, 'name', { value: error.name })
  const { code } = error as { code?: unknown }
  if (code !== undefined) shown.code = code
  return shown
}

/**
 * The start of the collector's answer (OTLPExporterError's `data`), the export's header values in
 * it hidden first (`invalid credentials: Bearer …`: a collector may quote them). Beside `err`, whose
 * fields holding a peer's bytes the process logger leaves out (see serializeErr).
 */
function loggedAnswer (error: Error | undefined, hide: (text: string) => string): string | undefined {
  const data = (error as { data?: unknown } | undefined)?.data
  if (typeof data !== 'string') return undefined
  const shown = hide(data)
  return shown.length <= MAX_LOGGED_ANSWER ? shown : `${shown.slice(0, MAX_LOGGED_ANSWER)}…(+${shown.length - MAX_LOGGED_ANSWER} characters)`
}

/** What the export lines name: the endpoint (its secrets hidden) and the routes whose spans go there. */
export interface ExportTarget {
  readonly endpoint: string
  readonly routes: readonly string[]
  /** A text with the export's header values in it as [redacted]. */
  readonly hide: (text: string) => string
}

/** How an export ended: its result, and the wait it started if the endpoint throttled it. */
interface Ended {
  readonly result: ExportResult
  readonly throttled?: Pause
}

/**
 * An exporter that ends each export at the timeout, whatever the OTLP exporter still waits for
 * (its own timeout is an idle timer: a collector that trickles its reply never reaches it), and
 * logs when exports start failing (once, with the error) and when they work again: a line per
 * outage, not per batch. A late answer to an export that already ended changes nothing.
 * One export at a time, until dispose: a batch that comes while the OTLP exporter still sends the
 * last one is refused at once, its spans dropped. An export the endpoint throttled (429 or 503,
 * OTLP's throttling) fails as that answer comes, and pauses the endpoint (throttling.ts): each
 * batch until then is refused at once, its spans dropped.
 */
export class LoggedExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #log: Logger
  readonly #target: ExportTarget
  readonly #timeoutMs: number
  /** The exports under way, each settling once it ended. */
  readonly #running = new Set<Promise<Ended>>()
  /** Exports the OTLP exporter has not given up yet (each cut by `timeout`, export-connections.ts). */
  #sending = 0
  #parallel = false
  #failing = false
  readonly #connections: Pick<ExportConnections, 'paused' | 'run'>

  constructor (inner: SpanExporter, log: Logger, target: ExportTarget, timeoutMs: number, connections: Pick<ExportConnections, 'paused' | 'run'>) {
    this.#inner = inner
    this.#connections = connections
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
    if (this.#connections.paused() !== undefined) {
      done({ code: ExportResultCode.FAILED, error: Object.assign(new Error('the endpoint asked to wait (Retry-After)'), { name: EXPORT_THROTTLED }) })
      return
    }
    this.#sending++
    const running = new Promise<Ended>(resolve => {
      const timer = setTimeout(() => { resolve({ result: { code: ExportResultCode.FAILED, error: new Error(`OTLP export timed out after ${this.#timeoutMs} ms`) } }) }, this.#timeoutMs)
      this.#connections.run(() => {
        this.#inner.export(spans, result => { this.#sending--; clearTimeout(timer); resolve({ result }) })
      }, throttled => {
        // Over now: the SDK's retries, after its own wait, are refused (a shutdown need not wait for them).
        clearTimeout(timer)
        resolve({ result: { code: ExportResultCode.FAILED, error: Object.assign(new Error(`the endpoint answered ${throttled.status}`), { code: throttled.status }) }, throttled })
      })
    })
    this.#running.add(running)
    void running.then(({ result, throttled }) => {
      this.#running.delete(running)
      this.#logged(result, throttled)
      done(result)
    })
  }

  #logged (result: ExportResult, throttled: Pause | undefined): void {
    if (result.code !== ExportResultCode.SUCCESS && !this.#failing) {
      this.#failing = true
      const paused = throttled === undefined ? '' : `; it answered ${throttled.status}: sending resumes at ${throttled.resumesAt}`
      this.#log.warn({ err: loggedError(result.error), answer: loggedAnswer(result.error, this.#target.hide), endpoint: this.#target.endpoint, routes: this.#target.routes, ...throttled }, `span export failed: spans are dropped until the endpoint answers (portcullis_opentelemetry_spans_total)${paused}`)
    } else if (result.code === ExportResultCode.SUCCESS && this.#failing) {
      this.#failing = false
      this.#log.info({ endpoint: this.#target.endpoint, routes: this.#target.routes }, 'span export works again')
    }
  }

  /** From now on (the pipeline's dispose), every batch is sent, the queued ones side by side: none while the endpoint asks to wait. */
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
