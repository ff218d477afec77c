import { toMs } from '../config/duration.ts'
import type { UpstreamConfig } from '../config/schema.ts'
import { BREAKER_DEFAULTS, type BreakerSettings } from './circuit-breaker.ts'
import { DEFAULT_PASSIVE, type PassiveSettings } from './outlier-detection.ts'

// request: 0 is no limit.
const DEFAULT_TIMEOUTS = { connect: 5_000, response: 60_000, idle: 60_000, request: 0 }

export interface QueueSettings {
  /** Requests that may wait per target; past it, 503 upstream_busy at once. */
  readonly max: number
  /** The longest wait for a connection, ms; past it, 503 upstream_busy. */
  readonly timeoutMs: number
}

const DEFAULT_QUEUE = { max: 1024, timeoutMs: 30_000 }

export function queueSettings (config: UpstreamConfig): QueueSettings {
  return { max: config.queue?.max ?? DEFAULT_QUEUE.max, timeoutMs: ms(config.queue?.timeout, DEFAULT_QUEUE.timeoutMs) }
}

export interface HealthCheckSettings {
  readonly path: string
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Whether a status counts as healthy, indexed by status (100-599). */
  readonly expect: Uint8Array
  readonly unhealthyAfter: number
  readonly healthyAfter: number
}

const ms = (v: number | string | undefined, fallback: number) => v === undefined ? fallback : toMs(v)

export function timeoutSettings (config: UpstreamConfig) {
  const t = config.timeouts ?? {}
  return {
    connect: ms(t.connect, DEFAULT_TIMEOUTS.connect),
    response: ms(t.response, DEFAULT_TIMEOUTS.response),
    idle: ms(t.idle, DEFAULT_TIMEOUTS.idle),
    request: ms(t.request, DEFAULT_TIMEOUTS.request)
  }
}

export function passiveSettings (config: UpstreamConfig): PassiveSettings | undefined {
  const p = config.passive
  if (p === false) return undefined
  return {
    consecutiveFailures: p?.consecutiveFailures ?? DEFAULT_PASSIVE.consecutiveFailures,
    baseEjectionMs: ms(p?.baseEjection, DEFAULT_PASSIVE.baseEjectionMs),
    maxEjectionMs: ms(p?.maxEjection, DEFAULT_PASSIVE.maxEjectionMs)
  }
}

export function breakerSettings (config: UpstreamConfig): BreakerSettings | undefined {
  const b = config.circuitBreaker
  if (b === undefined) return undefined
  return {
    failureRate: b.failureRate ?? BREAKER_DEFAULTS.failureRate,
    windowMs: ms(b.window, BREAKER_DEFAULTS.windowMs),
    minRequests: b.minRequests ?? BREAKER_DEFAULTS.minRequests,
    halfOpenAfterMs: ms(b.halfOpenAfter, BREAKER_DEFAULTS.halfOpenAfterMs)
  }
}

export const DEFAULT_CHECK_INTERVAL_MS = 5_000

export function healthCheckSettings (config: UpstreamConfig): HealthCheckSettings | undefined {
  const h = config.healthCheck
  if (h === undefined) return undefined
  const intervalMs = ms(h.interval, DEFAULT_CHECK_INTERVAL_MS)
  return {
    path: h.path,
    intervalMs,
    timeoutMs: ms(h.timeout, 1_000),
    expect: statusTable(h.expectStatus ?? ['2xx', '3xx']),
    unhealthyAfter: h.unhealthyAfter ?? 3,
    healthyAfter: h.healthyAfter ?? 2
  }
}

/** [lo, hi] of a status spec: 200, "2xx" or "200-299" (validated by the schema and checkConfig). */
export function statusRange (spec: number | string): [number, number] {
  if (typeof spec === 'number') return [spec, spec]
  if (spec.endsWith('xx')) { const c = Number(spec[0]) * 100; return [c, c + 99] }
  const [lo, hi] = spec.split('-').map(Number) as [number, number]
  return [lo, hi]
}

/** A lookup table: table[status] === 1 when a spec covers it. */
function statusTable (specs: ReadonlyArray<number | string>): Uint8Array {
  const table = new Uint8Array(600)
  for (const spec of specs) {
    const [lo, hi] = statusRange(spec)
    table.fill(1, lo, hi + 1)
  }
  return table
}
