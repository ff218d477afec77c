import type { GatewayRequest, MetricOptions, PluginMetrics, PluginReply } from '../../../src/index.ts'
import type { Logger } from 'pino'
import { LogLimiter } from '../../../src/logging/log-limiter.ts'

/** Why a request was refused, in words safe to show the client (never the credential itself). */
export interface AuthFailure {
  readonly status: 401 | 403 | 429 | 503
  /** A short fixed word: the metric's `reason` label and the log line's. */
  readonly reason: string
  /** The body's `error` code (RFC 6750's invalid_token and insufficient_scope for bearer tokens). */
  readonly code: string
  readonly description: string
  /** For insufficient_scope: the scopes the route requires. */
  readonly scope?: string
  /** Seconds for Retry-After; a 503 without it gets 5. */
  readonly retryAfter?: number
}

export const fail = (status: AuthFailure['status'], reason: string, code: string, description: string, scope?: string): AuthFailure =>
  ({ status, reason, code, description, ...(scope === undefined ? {} : { scope }) })

/** A request without any credential of the route's auth plugins. */
export const MISSING = fail(401, 'missing', 'unauthorized', 'authentication is required')

// One declaration: the plugins that pass this very object share the metric (another plugin asking for its name is refused).
const FAILURES: MetricOptions<'route' | 'plugin' | 'reason'> = {
  name: 'portcullis_auth_failures_total',
  help: 'Requests refused by an authentication or access control plugin, by reason.',
  labelNames: ['route', 'plugin', 'reason']
}

/** Shared by every auth plugin: failures by route, plugin and reason. */
export function failureCounter (metrics: PluginMetrics) {
  return metrics.counter(FAILURES)
}

// Any client can be refused at will, once a request: the lines are limited (docs/operations.md#logs).
// One limiter per plugin's logger (a route's), so its lines and summaries carry the route and plugin;
// flushed with the config's (LogLimiter.of), at a reload's retirement of it and at a stop.

/** Counts, logs (why, never the credential: a few lines per route, plugin and reason) and answers a refused request. */
export function refuse (req: GatewayRequest, failure: AuthFailure, plugin: string, log: Logger, counter: ReturnType<typeof failureCounter>,
  challenges: readonly string[]): PluginReply {
  counter.labels(req.route.name, plugin, failure.reason).inc()
  const msg = `${plugin}: ${failure.description}`
  const { reason, status } = failure
  if (LogLimiter.of(log).allow(reason, 'info', { reason, status }, msg, { key: plugin, fields: {} })) log.info({ requestId: req.id, reason, status }, msg)
  const headers: Record<string, string | string[]> = { 'cache-control': 'no-store' }
  if (challenges.length > 0) headers['www-authenticate'] = challenges.length === 1 ? challenges[0] as string : [...challenges]
  if (failure.retryAfter !== undefined) headers['retry-after'] = String(failure.retryAfter)
  else if (failure.status === 503) headers['retry-after'] = '5'
  return { status: failure.status, headers, body: { error: failure.code, message: failure.description, requestId: req.id } }
}
