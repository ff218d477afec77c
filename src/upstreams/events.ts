import type { Logger } from 'pino'
import { LogLimiter } from '../logging/log-limiter.ts'
import type { Metrics } from '../metrics/metrics.ts'
import type { BreakerState } from './circuit-breaker.ts'
import type { Target } from './target.ts'

/** What an upstream reports as its targets change state: logged, and counted in metrics. */
export interface UpstreamEvents {
  ejected (upstream: string, target: Target, forMs: number): void
  /** A passive ejection is over (the target may still be kept out by its checks or breaker). */
  ejectionEnded (upstream: string, target: Target): void
  breaker (upstream: string, target: Target, state: BreakerState): void
  /** `reason`: why the last active check failed, when unhealthy by them. */
  health (upstream: string, target: Target, healthy: boolean, reason?: string): void
  retried (upstream: string, reason: string): void
  busy (upstream: string, target: Target, reason: 'queue-full' | 'queue-timeout'): void
  waited (upstream: string, ms: number): void
  targetsChanged (upstream: string, added: readonly string[], removed: readonly string[]): void
}

const noop = () => {}
export const NO_EVENTS: UpstreamEvents = { ejected: noop, ejectionEnded: noop, breaker: noop, health: noop, retried: noop, busy: noop, waited: noop, targetsChanged: noop }

const BUSY = 'upstream busy: request refused'

/** `limits`: for the lines a client can provoke at will (a refusal per request once a target is full). */
export function upstreamEvents (log: Logger, metrics: Metrics | undefined, limits = new LogLimiter(log)): UpstreamEvents {
  return {
    ejected (upstream, target, forMs) {
      metrics?.upstreamEjections.inc({ upstream, target: target.url })
      log.warn({ upstream, target: target.url, ejectedForMs: Math.round(forMs) }, 'target ejected after consecutive failures')
    },
    ejectionEnded (upstream, target) {
      log.info({ upstream, target: target.url }, 'target ejection ended')
    },
    breaker (upstream, target, state) {
      log[state === 'closed' ? 'info' : 'warn']({ upstream, target: target.url, state }, `circuit breaker ${state}`)
    },
    health (upstream, target, healthy, reason) {
      log[healthy ? 'info' : 'warn']({ upstream, target: target.url, healthy, reason }, healthy ? 'target healthy' : 'target unhealthy')
    },
    retried (upstream, reason) {
      metrics?.upstreamRetries.inc({ upstream, reason })
    },
    busy (upstream, target, reason) {
      metrics?.upstreamBusy.inc({ upstream, reason })
      if (reason === 'queue-timeout') metrics?.timeouts.inc({ kind: 'queue' })
      if (limits.allow(`${upstream}\0${target.url}`, 'warn', { upstream, target: target.url }, BUSY)) {
        log.warn({ upstream, target: target.url, reason, queued: target.waiting.length, inFlight: target.inFlight }, BUSY)
      }
    },
    waited (upstream, ms) {
      metrics?.upstreamQueueWait.observe({ upstream }, ms / 1000)
    },
    targetsChanged (upstream, added, removed) {
      if (added.length > 0) metrics?.targetsAdded(upstream, added)
      if (removed.length > 0) metrics?.targetsRemoved(upstream, removed)
      log.info({ upstream, added, removed }, 'upstream targets changed')
    }
  }
}
