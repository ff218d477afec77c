import type { MeterProvider, Tracer } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, RandomIdGenerator, TraceIdRatioBasedSampler, type BufferConfig, type IdGenerator
} from '@opentelemetry/sdk-trace-base'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import { toMs, type PluginSetupContext } from '../../src/index.ts'
import { LoggedExporter, spanAccounting } from './export-accounting.ts'
import { DEFAULTS, type OpenTelemetryConfig } from './schema.ts'

/**
 * Span ids: random, except for the span started right after preset(), which takes the ids the
 * gateway already gave the request (req.trace), so that the access log's traceId and the span the
 * upstream saw as parent without this plugin stay the request's.
 */
export class RequestIds implements IdGenerator {
  readonly #random = new RandomIdGenerator()
  #traceId: string | undefined
  #spanId: string | undefined

  preset (traceId: string, spanId: string): void { this.#traceId = traceId; this.#spanId = spanId }
  clear (): void { this.#traceId = this.#spanId = undefined }
  generateTraceId (): string { return this.#traceId ?? this.#random.generateTraceId() }
  generateSpanId (): string { return this.#spanId ?? this.#random.generateSpanId() }
}

/** One exporter pipeline (provider, batch processor, OTLP exporter), shared by the routes of a config with the same settings. */
export interface Tracing {
  readonly tracer: Tracer
  readonly ids: RequestIds
  /** Exports what is queued (bounded by `timeout`), then stops. */
  dispose (): Promise<void>
}

export function startTracing (config: OpenTelemetryConfig, ctx: PluginSetupContext): Tracing {
  const endpoint = config.endpoint ?? DEFAULTS.endpoint
  const timeout = toMs(config.timeout ?? DEFAULTS.timeout)
  const maxQueueSize = config.maxQueueSize ?? DEFAULTS.maxQueueSize
  const otlp = new OTLPTraceExporter({ url: endpoint, headers: config.headers ?? {}, timeoutMillis: timeout })
  // selfObsMeterProvider is a BatchSpanProcessor option its BufferConfig type does not list yet.
  const batching: BufferConfig & { selfObsMeterProvider: MeterProvider } = {
    maxQueueSize,
    maxExportBatchSize: Math.min(config.maxBatchSize ?? DEFAULTS.maxBatchSize, maxQueueSize),
    scheduledDelayMillis: toMs(config.flushInterval ?? DEFAULTS.flushInterval),
    exportTimeoutMillis: timeout,
    selfObsMeterProvider: spanAccounting(ctx.metrics)
  }
  const ids = new RequestIds()
  const provider = new BasicTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName ?? DEFAULTS.serviceName })),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplingRatio ?? DEFAULTS.samplingRatio) }),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(new LoggedExporter(otlp, ctx.log, endpoint), batching)]
  })
  return {
    tracer: provider.getTracer('portcullis'),
    ids,
    dispose: () => provider.shutdown()
  }
}
