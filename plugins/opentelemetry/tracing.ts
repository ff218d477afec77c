import type { MeterProvider, Tracer } from '@opentelemetry/api'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources'
import {
  BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler, RandomIdGenerator, TraceIdRatioBasedSampler, type BufferConfig, type IdGenerator
} from '@opentelemetry/sdk-trace-base'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import { hideUrlSecrets, toMs, type PluginSetupContext } from '../../src/index.ts'
import { REDACTED } from '../../src/config/url-userinfo.ts'
import { headerBytes } from '../shared/header-edits.ts'
import { LoggedExporter, spanAccounting } from './export-accounting.ts'
import { exportConnections } from './export-connections.ts'
import { DEFAULTS, type OpenTelemetryConfig } from './schema.ts'

// Attribute values (url.path, url.full, user_agent.original) cut as the access log cuts its path
// (MAX_LOGGED_PATH): a client's 7 KB path would otherwise go whole into every export.
const MAX_ATTRIBUTE_LENGTH = 2048

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
  /** The routes that share it, each added by its setup: named in the export lines (the logger's `route` is only the first's). */
  readonly routes: string[]
  /** Exports what is queued within `timeout`, then stops: any export still running is cut, every connection closed. */
  dispose (): Promise<void>
}

/**
 * `create()`, with the process's OTEL_* variables out of its sight. The SDK reads them as it builds
 * its parts: OTEL_EXPORTER_OTLP_HEADERS would add another tool's token to the exports of this
 * config's endpoint, OTEL_EXPORTER_OTLP_COMPRESSION gzip them, OTEL_ATTRIBUTE_* cut attributes.
 * The config is the one source. Synchronous: nothing else runs while they are set aside.
 */
function withoutOtelEnv<T> (create: () => T): T {
  const env = process.env
  const hidden = Object.keys(env).filter(name => name.startsWith('OTEL_')).map(name => [name, env[name]] as const)
  for (const [name] of hidden) delete env[name]
  try {
    return create()
  } finally {
    for (const [name, value] of hidden) env[name] = value
  }
}

export function startTracing (config: OpenTelemetryConfig, ctx: PluginSetupContext): Tracing {
  return withoutOtelEnv(() => pipeline(config, ctx))
}

function pipeline (config: OpenTelemetryConfig, ctx: PluginSetupContext): Tracing {
  const endpoint = config.endpoint ?? DEFAULTS.endpoint
  const timeout = toMs(config.timeout ?? DEFAULTS.timeout)
  const maxQueueSize = config.maxQueueSize ?? DEFAULTS.maxQueueSize
  const connections = exportConnections(endpoint, timeout)
  // Values as their UTF-8 bytes, as other header settings are sent (headerBytes): Node refuses a character past FF.
  const headers = Object.fromEntries(Object.entries(config.headers ?? {}).map(([name, value]) => [name, headerBytes(value)]))
  const otlp = new OTLPTraceExporter({ url: endpoint, headers, timeoutMillis: timeout, httpAgentOptions: () => connections.agent })
  const routes: string[] = []
  // A collector refusing an export may quote its headers: each value, and a `Scheme token` value's
  // token, as written or in JSON, the longest first; not one under 6 characters (it would hide every `a`).
  const secrets = [...new Set(Object.values(config.headers ?? {})
    .flatMap(value => [value, /^\S+ +(.+)$/.exec(value)?.[1] ?? '']).filter(v => v.length >= 6)
    .flatMap(v => [v, JSON.stringify(v).slice(1, -1)]))].sort((a, b) => b.length - a.length)
  const hide = (text: string): string => secrets.reduce((shown, secret) => shown.replaceAll(secret, REDACTED), text)
  const exporter = new LoggedExporter(otlp, ctx.log, { endpoint: hideUrlSecrets(endpoint), routes, hide }, timeout, connections)
  // selfObsMeterProvider is a BatchSpanProcessor option its BufferConfig type does not list yet.
  const batching: BufferConfig & { selfObsMeterProvider: MeterProvider } = {
    maxQueueSize,
    maxExportBatchSize: Math.min(config.maxBatchSize ?? DEFAULTS.maxBatchSize, maxQueueSize),
    scheduledDelayMillis: toMs(config.flushInterval ?? DEFAULTS.flushInterval),
    // A backstop only: the exporter ends each export at `timeout`, so that it is counted (past
    // this, the processor would go on without counting it).
    exportTimeoutMillis: 2 * timeout,
    selfObsMeterProvider: spanAccounting(ctx.metrics)
  }
  const ids = new RequestIds()
  const provider = new BasicTracerProvider({
    spanLimits: { attributeValueLengthLimit: MAX_ATTRIBUTE_LENGTH },
    resource: defaultResource().merge(resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName ?? DEFAULTS.serviceName })),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.samplingRatio ?? DEFAULTS.samplingRatio) }),
    idGenerator: ids,
    spanProcessors: [new BatchSpanProcessor(exporter, batching)]
  })
  return {
    tracer: provider.getTracer('portcullis'),
    ids,
    routes,
    async dispose () {
      // Exports the queued batches side by side (dropped while the endpoint asks to wait), each over
      // within `timeout`, or as the endpoint throttles it. The first that fails (counted and logged)
      // rejects this before the exporter's shutdown: done again, to wait for the others. Closing
      // the connections then ends what the SDK still sends (a retry).
      exporter.sendAll()
      await provider.shutdown().catch(() => {})
      await exporter.shutdown()
      connections.close()
    }
  }
}
