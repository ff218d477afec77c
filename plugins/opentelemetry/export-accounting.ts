import { createNoopMeter, type Attributes, type Meter, type MeterProvider } from '@opentelemetry/api'
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { Logger } from 'pino'
import type { PluginMetrics } from '../../src/index.ts'

// The batch processor reports what became of each span on this semconv counter (its self-observability).
const SPANS_PROCESSED = 'otel.sdk.processor.span.processed'

/**
 * The batch span processor's own accounting, into portcullis_opentelemetry_spans_total{result}:
 * exported, failed (the export was refused or timed out) and dropped (the queue was full). The
 * processor reports through an OpenTelemetry meter; this one forwards that counter to prom-client.
 */
export function spanAccounting (metrics: PluginMetrics): MeterProvider {
  const spans = metrics.counter({
    name: 'portcullis_opentelemetry_spans_total',
    help: 'Spans handed to the OTLP exporter, by result: exported, failed (export refused or timed out), dropped (export queue full).',
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
          ;(error === undefined ? results.exported : error === 'queue_full' ? results.dropped : results.failed).inc(count)
        }
      }
    }
  })
  return { getMeter: () => meter }
}

/** What the export lines name: the endpoint (its secrets hidden) and the routes whose spans go there. */
export interface ExportTarget {
  readonly endpoint: string
  readonly routes: readonly string[]
}

/**
 * An exporter that logs when exports start failing (once, with the error) and when they work
 * again: a line per outage, not per batch.
 */
export class LoggedExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #log: Logger
  readonly #target: ExportTarget
  #failing = false

  constructor (inner: SpanExporter, log: Logger, target: ExportTarget) {
    this.#inner = inner
    this.#log = log
    this.#target = target
  }

  export (spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.#inner.export(spans, result => {
      if (result.code !== ExportResultCode.SUCCESS && !this.#failing) {
        this.#failing = true
        this.#log.warn({ err: result.error, endpoint: this.#target.endpoint, routes: this.#target.routes }, 'span export failed: spans are dropped until the endpoint answers (portcullis_opentelemetry_spans_total)')
      } else if (result.code === ExportResultCode.SUCCESS && this.#failing) {
        this.#failing = false
        this.#log.info({ endpoint: this.#target.endpoint, routes: this.#target.routes }, 'span export works again')
      }
      done(result)
    })
  }

  shutdown (): Promise<void> { return this.#inner.shutdown() }
  forceFlush (): Promise<void> { return this.#inner.forceFlush?.() ?? Promise.resolve() }
}
