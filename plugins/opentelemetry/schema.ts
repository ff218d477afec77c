import { Type, type Static } from '@sinclair/typebox'
import { Duration, NonEmptyKey, toMs, type PluginConfigProblem } from '../../src/index.ts'
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
  headers: Type.Optional(Type.Record(NonEmptyKey, Type.String(), {
    additionalProperties: false,
    errorMessage: 'is not a valid name: it must not be empty',
    default: {},
    description: 'Headers sent with every export (an API key: use ${ENV} interpolation for secrets).'
  })),
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

/**
 * `timeout` and `flushInterval` of 1ms or more: the SDK refuses a zero timeout only once the
 * gateway starts, and a zero flushInterval would send nearly every span in an export of its own.
 */
export function checkOpenTelemetry (config: OpenTelemetryConfig): PluginConfigProblem[] {
  const problems: PluginConfigProblem[] = []
  if (config.timeout !== undefined && toMs(config.timeout) === 0) problems.push({ path: ['timeout'], message: 'must be at least 1ms: it is how long one export may take (default 10s)' })
  if (config.flushInterval !== undefined && toMs(config.flushInterval) === 0) problems.push({ path: ['flushInterval'], message: 'must be at least 1ms: it is how long a finished span may wait for its batch (default 5s)' })
  return problems
}
