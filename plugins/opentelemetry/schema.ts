import { Type, type Static } from '@sinclair/typebox'
import { Duration, NonEmptyKey, toMs, type PluginConfigProblem } from '../../src/index.ts'
import { ByHeaderName, caseTwins, HeaderValue } from '../shared/header-edits.ts'
import { Scalar } from '../shared/scalar.ts'

export const DEFAULTS = {
  endpoint: 'http://localhost:4318/v1/traces',
  serviceName: 'portcullis',
  samplingRatio: 1,
  timeout: '10s',
  flushInterval: '5s',
  maxQueueSize: 2048,
  maxBatchSize: 512
}

export const OpenTelemetrySchema = Type.Object({
  endpoint: Type.Optional(Type.String({
    pattern: '^https?://',
    errorMessage: 'must be an http:// or https:// URL',
    default: DEFAULTS.endpoint,
    description: 'The OTLP/HTTP traces URL (a collector, Tempo, Jaeger...), path included: spans are POSTed there as OTLP JSON.'
  })),
  // Names and values as request-termination's: hop-by-hop and framing names refused; see checkOpenTelemetry for the exporter's own.
  headers: Type.Optional(ByHeaderName(HeaderValue, 'Headers sent with every export (an API key: use ${ENV} interpolation for secrets). Default: none.')),
  serviceName: Type.Optional(Type.String({ minLength: 1, default: DEFAULTS.serviceName, description: 'The service.name resource attribute of the spans.' })),
  resourceAttributes: Type.Optional(Type.Record(NonEmptyKey, Scalar, {
    additionalProperties: false,
    errorMessage: 'is not a valid name: it must not be empty',
    default: {},
    description: 'More resource attributes (deployment.environment.name, service.version, service.instance.id...).'
  })),
  samplingRatio: Type.Optional(Type.Number({
    minimum: 0,
    maximum: 1,
    default: DEFAULTS.samplingRatio,
    description: "Share of new traces recorded (requests without a valid traceparent, or whose caller server.traceContext does not follow). Parent-based: a request that continues its caller's trace follows the caller's sampled flag."
  })),
  timeout: Type.Optional(Type.Union([Duration], { default: DEFAULTS.timeout, description: 'How long one export may take before it counts as failed.' })),
  flushInterval: Type.Optional(Type.Union([Duration], { default: DEFAULTS.flushInterval, description: 'Longest time a finished span waits before its batch is sent.' })),
  maxQueueSize: Type.Optional(Type.Integer({
    minimum: 1,
    default: DEFAULTS.maxQueueSize,
    description: 'Finished spans held for export. When full (the endpoint down or slow), new spans are dropped and counted, never waited for.'
  })),
  maxBatchSize: Type.Optional(Type.Integer({ minimum: 1, default: DEFAULTS.maxBatchSize, description: 'Most spans in one export request; a full batch is sent at once.' }))
}, { additionalProperties: false })

export type OpenTelemetryConfig = Static<typeof OpenTelemetrySchema>

// Headers the exporter writes for each export: a configured one was replaced (Content-Type,
// User-Agent), sent as the Host of another site, or made the endpoint misread the body (Content-Encoding).
const EXPORTER_HEADERS = new Set(['host', 'content-type', 'content-encoding', 'user-agent'])

// The SDK's timers take at most 2^31-1 ms (24.8 days; longer ones fire after 1 ms, with a warning
// line on every export), and its backstop is twice `timeout`. An hour is already far past any use.
const MAX_WAIT_MS = 3_600_000

/**
 * An endpoint that parses as a URL (the SDK's error names no route or key). `timeout` and
 * `flushInterval` from 1ms to 1h: the SDK refuses a zero timeout only once the gateway starts, a
 * zero flushInterval would send nearly every span in an export of its own, and see MAX_WAIT_MS.
 * No header the exporter writes itself, nor one named twice (another case: one value would be sent).
 */
export function checkOpenTelemetry (config: OpenTelemetryConfig): PluginConfigProblem[] {
  const problems = caseTwins(config.headers, 'headers')
  for (const name of Object.keys(config.headers ?? {})) {
    if (EXPORTER_HEADERS.has(name.toLowerCase())) problems.push({ path: ['headers', name], message: `"${name}" is the exporter's own (Host from endpoint, Content-Type, Content-Encoding, User-Agent): it cannot be set` })
  }
  if (config.endpoint !== undefined && !URL.canParse(config.endpoint)) problems.push({ path: ['endpoint'], message: 'is not a URL: it needs a host (http://collector:4318/v1/traces)' })
  for (const [key, what, fallback] of [['timeout', 'how long one export may take', DEFAULTS.timeout], ['flushInterval', 'how long a finished span may wait for its batch', DEFAULTS.flushInterval]] as const) {
    const ms = config[key] === undefined ? undefined : toMs(config[key])
    if (ms !== undefined && (ms === 0 || ms > MAX_WAIT_MS)) problems.push({ path: [key], message: `must be from 1ms to 1h: it is ${what} (default ${fallback})` })
  }
  return problems
}
