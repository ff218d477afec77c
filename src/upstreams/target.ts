import type { ConnectionOptions } from 'node:tls'
import { Pool } from 'undici'
import { connectorWithTimeout } from './connector.ts'
import { sniConnector } from './tls.ts'
import { CircuitBreaker, type BreakerSettings, type BreakerState } from './circuit-breaker.ts'
import { OutlierState, type PassiveSettings } from './outlier-detection.ts'
import { PeakEwma } from './balancers/peak-ewma.ts'
import { RecentFailures } from './balancers/recent-failures.ts'
import { WaitQueue } from './wait-queue.ts'

/** How a target's connection pool is set up (shared by every target of an upstream). */
export interface PoolSettings {
  readonly connections: number
  readonly pipelining: number
  readonly keepAliveMs: number
  readonly connectMs: number
  readonly responseMs: number
  readonly idleMs: number
  /** For https:// targets: CA, client certificate, SNI name, verification. */
  readonly tls?: ConnectionOptions
}

/** Why a breaker keeps its target from traffic: open (halfOpenAfter not passed), or half-open with its probe in flight. */
export type BreakerDown = 'breaker-open' | 'breaker-half-open'

/** Why a target takes no traffic: failing active health checks, a passive ejection, its breaker. */
export type DownReason = 'health-checks' | 'ejected' | BreakerDown

/**
 * Why `breaker` keeps its target from traffic at `now`, if it does: the balancers' own test
 * (allows()), so an open breaker past halfOpenAfter, whose next request is its probe, does not.
 */
export function breakerDown (breaker: CircuitBreaker | undefined, now: number): BreakerDown | undefined {
  if (breaker === undefined || breaker.allows(now)) return undefined
  return breaker.state === 'open' ? 'breaker-open' : 'breaker-half-open'
}

/**
 * A target's effective state, the one vocabulary of GET /upstreams and portcullis_upstream_target_healthy:
 * healthy (takes traffic: Target.available()) exactly when there is no reason against it.
 */
export function downReasons (checksPassing: boolean, ejected: boolean, breaker: BreakerDown | undefined): DownReason[] {
  const reasons: DownReason[] = []
  if (!checksPassing) reasons.push('health-checks')
  if (ejected) reasons.push('ejected')
  if (breaker !== undefined) reasons.push(breaker)
  return reasons
}

/** The name in host[:port], or the address (without brackets): see Target.servername. */
function hostName (host: string): string {
  const name = host.replace(/:\d+$/, '')
  return name.startsWith('[') ? name.slice(1, -1) : name
}

/** What the admin API and metrics show of a target. */
export interface TargetSnapshot {
  url: string
  host: string
  weight: number
  /** Takes traffic: as portcullis_upstream_target_healthy (1), no `down` reason. */
  healthy: boolean
  /** Why not, when not healthy (empty otherwise). */
  down: DownReason[]
  /** The active health checks' own verdict (true until they say otherwise, and without checks). */
  checksPassing: boolean
  /** ISO time when the passive ejection ends, or null. */
  ejectedUntil: string | null
  breaker: BreakerState | null
  /** Requests sent to the target and not finished, `retired`'s included. */
  inFlight: number
  /** Requests waiting for a free connection (upstream `queue`), `retired`'s included. */
  queued: number
  /** Peak-EWMA latency to response headers, ms, failed tries counted (see Upstream.outcome). */
  latencyMs: number
  /** Connections open to the target / in use, `retired`'s included. */
  connections: { open: number, busy: number }
  /**
   * Of those, what the configs a reload replaced still hold on the target until their requests end:
   * each config has its own pools and queues, so right after a reload inFlight may exceed connections × pipelining.
   */
  retired: TargetLoad
}

/** A target's requests and connections, as a snapshot shows them. */
export interface TargetLoad {
  inFlight: number
  queued: number
  connections: { open: number, busy: number }
}

/** The sum of `loads`. */
export function addLoads (loads: readonly TargetLoad[]): TargetLoad {
  const sum: TargetLoad = { inFlight: 0, queued: 0, connections: { open: 0, busy: 0 } }
  for (const l of loads) {
    sum.inFlight += l.inFlight
    sum.queued += l.queued
    sum.connections.open += l.connections.open
    sum.connections.busy += l.connections.busy
  }
  return sum
}

/** One backend address of an upstream, with its own keep-alive connection pool and health state. */
export class Target {
  /** Origin, e.g. http://10.0.0.5:3000; also the target's id in health messages and the admin API. */
  readonly url: string
  /** host[:port], the Host header sent when the route does not preserve the client's. */
  readonly host: string
  /**
   * For an https target, the name sent in SNI and checked against its certificate: tls.servername,
   * else the host's name (a DNS-discovered target's is the name it was found by: for SRV, the domain
   * of the service, never the records' target names, see resolveSrv). For an address,
   * the address: the connector sends no SNI then, and checks the certificate against it (see
   * sniConnector). Given with every request: undici would take it from the Host header, the
   * client's with preserveHost, and close the connection whenever it changes.
   */
  readonly servername: string | undefined
  readonly weight: number
  readonly pool: Pool
  /** Index of the config entry this target comes from (several for a DNS name). */
  readonly source: number
  /** Set by active health checks (here or, with workers, from the primary). */
  healthy = true
  /** Requests sent and not yet finished: never more than `capacity`, so that undici never queues one. */
  inFlight = 0
  /** connections × pipelining: the requests the pool can have on the wire at once. */
  readonly capacity: number
  /** Requests waiting for inFlight to drop under capacity. */
  readonly waiting = new WaitQueue()
  readonly outlier: OutlierState
  readonly breaker: CircuitBreaker | undefined
  readonly latency = new PeakEwma()
  /** Failed tries and answers, fading: its failure fraction, a factor on its cost for least-connections and p2c-ewma (see Upstream.outcome). */
  readonly recentFailures = new RecentFailures()

  constructor (url: string, host: string, weight: number, source: number, pool: PoolSettings,
    passive: PassiveSettings | undefined, breaker: BreakerSettings | undefined) {
    this.url = url
    this.host = host
    this.servername = url.startsWith('https:') ? pool.tls?.servername ?? hostName(host) : undefined
    this.weight = weight
    this.source = source
    this.capacity = pool.connections * pool.pipelining
    this.outlier = new OutlierState(passive)
    this.breaker = breaker === undefined ? undefined : new CircuitBreaker(breaker)
    this.pool = new Pool(url, {
      connections: pool.connections,
      pipelining: pool.pipelining,
      keepAliveTimeout: pool.keepAliveMs,
      // An upstream's Keep-Alive: timeout= hint may shorten keepAlive, not lengthen it (undici's cap is 600 s).
      keepAliveMaxTimeout: pool.keepAliveMs,
      connect: sniConnector(connectorWithTimeout(pool.connectMs, pool.tls)),
      headersTimeout: pool.responseMs,
      bodyTimeout: pool.idleMs
    })
  }

  /** Whether the target may get a request now (`now`: performance.now()). */
  available (now: number): boolean {
    return this.healthy && this.outlier.ejectedUntil <= now && (this.breaker === undefined || this.breaker.allows(now))
  }

  /**
   * How unlikely the target is to answer, for when none is available: unhealthy by active checks is
   * worst, then an open breaker, then the time left in its ejection.
   */
  badness (now: number): number {
    return (this.healthy ? 0 : 2e12) + (this.breaker?.allows(now) === false ? 1e12 : 0) + Math.max(0, this.outlier.ejectedUntil - now)
  }

  /** Its requests in flight and waiting, its connections open and busy. */
  load (): TargetLoad {
    const stats = this.pool.stats
    return { inFlight: this.inFlight, queued: this.waiting.length, connections: { open: stats.connected, busy: stats.connected - stats.free } }
  }

  /** `retired`: the same target's in the configs a reload replaced, still draining (see TargetSnapshot.retired). */
  snapshot (now: number, retired: readonly Target[] = []): TargetSnapshot {
    const old = addLoads(retired.map(t => t.load()))
    const total = addLoads([this.load(), old])
    const ejected = this.outlier.ejected(now)
    const breaker = this.breaker?.state ?? null
    const down = downReasons(this.healthy, ejected, breakerDown(this.breaker, now))
    return {
      url: this.url,
      host: this.host,
      weight: this.weight,
      healthy: down.length === 0,
      down,
      checksPassing: this.healthy,
      ejectedUntil: ejected ? new Date(Date.now() + this.outlier.ejectedUntil - now).toISOString() : null,
      breaker,
      inFlight: total.inFlight,
      queued: total.queued,
      latencyMs: Math.round(this.latency.value * 100) / 100,
      connections: total.connections,
      retired: old
    }
  }
}
