import type { ConnectionOptions } from 'node:tls'
import type { UpstreamConfig } from '../config/schema.ts'
import { toBytes } from '../config/byte-size.ts'
import { toMs } from '../config/duration.ts'
import { createBalancer, type Balancer, type BalancedRequest } from './balancers/index.ts'
import { NO_EVENTS, type UpstreamEvents } from './events.ts'
import type { BreakerMemory, BreakerSettings, CircuitBreaker, OpenGate } from './circuit-breaker.ts'
import { countsAsFailure, ejectionLimits, maxEjected, type EjectionLimits, type OutlierMemory, type PassiveSettings } from './outlier-detection.ts'
import { RetryPolicy } from './retry-policy.ts'
import { breakerSettings, healthCheckSettings, passiveSettings, queueSettings, timeoutSettings, type HealthCheckSettings, type QueueSettings } from './settings.ts'
import { breakerDown, Target, type PoolSettings, type TargetSnapshot } from './target.ts'
import type { Waiter } from './wait-queue.ts'

/** Targets whose badness (Target.badness) differs by less than this are as bad: ejections ending within a second of each other. */
const AS_BAD_MS = 1_000

/**
 * How long, and for how many addresses, what passive checks and the breaker learned of a target DNS
 * discovery removed is kept for a target at its address to take (see setTargets): the default
 * longest ejection, and a bound on what a name churning through addresses can make it hold.
 */
const REMOVED_KEPT_MS = 300_000
const REMOVED_KEPT_MAX = 1_024

export { Target } from './target.ts'

/** A target address as configured or discovered. */
export interface TargetAddress { url: string, host: string, weight: number }

/** What a target of the previous runtime had learned; `healthy` only when active health carries over. */
interface Learned { healthy: boolean | undefined, outlier: OutlierMemory, breaker: BreakerMemory | undefined }

export interface UpstreamSnapshot {
  name: string
  balance: string
  targets: TargetSnapshot[]
  /** Retries the budget would allow right now. */
  retryBudget: number
}

/**
 * A named group of targets with its balancer, health state and retry policy. Built at config load;
 * closed when its runtime is disposed. Requests call pick() (or retryTarget()), then begin(),
 * outcome() once the target answered or failed, and end() when the exchange with it is over.
 */
export class Upstream {
  readonly name: string
  readonly config: UpstreamConfig
  readonly timeouts: { connect: number, response: number, idle: number, request: number }
  readonly retry: RetryPolicy
  readonly healthCheck: HealthCheckSettings | undefined
  /** Request bodies up to this many bytes (by content-length) are read before a connection is taken. */
  readonly requestBuffer: number
  readonly responseBuffer: number
  /** How many requests may wait for a connection of a target, and for how long. */
  readonly queue: QueueSettings
  readonly #events: UpstreamEvents
  readonly #pool: PoolSettings
  /** TLS options of https:// targets (health checks use them too). */
  get tls (): ConnectionOptions | undefined { return this.#pool.tls }
  readonly #passive: PassiveSettings | undefined
  readonly #ejection: EjectionLimits
  readonly #breaker: BreakerSettings | undefined
  readonly #failWhenAllDown: boolean
  /** consistent-hash: a request waits for its own target, never taken by another's free slot. */
  readonly #sticky: boolean
  #targets: readonly Target[]
  #balancer: Balancer
  /**
   * Targets DNS discovery removed, or that stopped taking traffic, while requests waited on them:
   * those go to the others' free slots.
   */
  #orphans: Target[] = []
  /** By URL, for the targets DNS discovery has yet to create on reload (plain values: the old runtime can go). */
  #learned: ReadonlyMap<string, Learned> | undefined
  /** The `resolve: dns` entries with no addresses yet: #learned is kept until none is left. */
  readonly #unresolved: Set<number>
  /**
   * By URL, what targets DNS discovery removed had learned (ejection, breaker), and when they went,
   * oldest first: an address that drops out of an answer for a round comes back as it was.
   */
  #removed = new Map<string, { learned: Learned, at: number }>()
  /** DNS discovery's lookups (not those of entries it follows), for the metrics to read. */
  readonly dnsLookups = { ok: 0, failed: 0 }
  /**
   * Timers that log the end of the targets' passive ejections (no timer per request: one per
   * ejection). An ejection a reload passes on is logged by the upstream that took it over.
   */
  readonly #ejectionEnds = new Map<Target, NodeJS.Timeout>()
  /** Asked by a breaker at its threshold: one function for the upstream, none made per request. */
  readonly #mayOpen: OpenGate = (breaker, down, now) => this.#mayTakeOut(breaker, now, down, true)

  constructor (name: string, config: UpstreamConfig, events: UpstreamEvents = NO_EVENTS, tls?: ConnectionOptions) {
    this.name = name
    this.config = config
    this.#events = events
    this.timeouts = timeoutSettings(config)
    this.retry = new RetryPolicy(config.retries)
    this.healthCheck = healthCheckSettings(config)
    this.queue = queueSettings(config)
    this.requestBuffer = config.requestBuffer === undefined ? this.retry.maxBodyBytes : toBytes(config.requestBuffer)
    this.responseBuffer = config.responseBuffer === undefined ? 65_536 : toBytes(config.responseBuffer)
    this.#failWhenAllDown = config.whenAllUnhealthy === 'fail'
    this.#sticky = config.balance === 'consistent-hash'
    this.#passive = passiveSettings(config)
    this.#ejection = ejectionLimits(config.passive)
    this.#breaker = breakerSettings(config)
    this.#pool = {
      connections: config.connections ?? 128,
      pipelining: config.pipelining ?? 1,
      keepAliveMs: config.keepAlive === undefined ? 4_000 : toMs(config.keepAlive),
      connectMs: this.timeouts.connect,
      responseMs: this.timeouts.response,
      idleMs: this.timeouts.idle,
      tls
    }
    // A name to resolve is used as is (undici resolves it per connection) until discovery has addresses.
    this.#unresolved = new Set(config.targets.flatMap((t, i) => t.resolve === 'dns' ? [i] : []))
    this.#targets = config.targets.map((t, i) => {
      const origin = new URL(t.url)
      return this.#newTarget({ url: origin.origin, host: origin.host, weight: t.weight ?? 1 }, i)
    })
    this.#balancer = createBalancer(config, this.#targets)
  }

  get targets (): readonly Target[] { return this.#targets }

  /**
   * The target for a request's first try. When none is available: one of the least bad, or undefined
   * with whenAllUnhealthy: fail (and when there are no targets at all). A target with a free slot
   * first (as nginx skips a peer at max_conns): the request queues only when every available one is full.
   */
  pick (req: BalancedRequest): Target | undefined {
    this.retry.budget.deposit()
    const now = performance.now()
    const target = this.#balancer.pick(req, now, undefined, true) ?? this.#balancer.pick(req, now, undefined, false)
    if (target !== undefined || this.#failWhenAllDown) return target
    return this.#leastBad(req, now, undefined)
  }

  /**
   * When no target is available: the least bad not in `tried`, balanced among those as bad: a cause
   * all share (a health check's own dependency down) sent all the traffic to the first target listed,
   * and a key to no target of its own.
   */
  #leastBad (req: BalancedRequest, now: number, tried: readonly Target[] | undefined): Target | undefined {
    let least = Infinity
    for (const t of this.#targets) if (tried?.includes(t) !== true) least = Math.min(least, t.badness(now))
    const left = this.#targets.filter(t => tried?.includes(t) === true || t.badness(now) > least + AS_BAD_MS)
    return this.#balancer.pick(req, now, left, true, true) ?? this.#balancer.pick(req, now, left, false, true)
  }

  /**
   * An available target not in `tried` for a retry, if the retry budget allows one; counts the retry.
   * A least-bad pick only after a connect error, when none is available (nothing was sent, and the
   * other may answer: a dead target among targets failing checks they share); else retrying on a
   * target known to be down would only add load. A `reset`
   * (the connection broke before the response headers) with no other target may go to the same one,
   * once: most often a kept-alive connection the target closed as the request went out (its idle
   * timeout shorter than the pool's), and the retry takes another connection (as nginx does).
   */
  retryTarget (req: BalancedRequest, tried: readonly Target[], reason: string): Target | undefined {
    if (this.retry.budget.balance < 1) return undefined
    const now = performance.now()
    const target = this.#balancer.pick(req, now, tried, true) ?? this.#balancer.pick(req, now, tried, false) ??
      (reason === 'reset' && tried.length === 1 ? this.#balancer.pick(req, now, undefined, false) : undefined) ??
      (reason === 'connect-error' && !this.#failWhenAllDown && !this.#anyAvailable(now) ? this.#leastBad(req, now, tried) : undefined)
    if (target === undefined) return undefined
    this.retry.budget.withdraw()
    this.#events.retried(this.name, reason)
    return target
  }

  /** A request is being sent to `target`; returns the time (performance.now()) to pass to outcome(). */
  begin (target: Target): number {
    const now = performance.now()
    target.inFlight++
    target.breaker?.dispatched(now)
    return now
  }

  /**
   * How an attempt went: `ok` unless it failed to connect, broke, timed out or answered 5xx.
   * `answered`: it came with the response head (a good answer's latency is observed then, here or
   * by the exchange); a failure's is always observed, see #failureLatency. A failure without it (the
   * target could not be connected to: refused, a connect timeout) is one a target down gives (see
   * #mayTakeOut); the exchange passes those on a connection the target took (a reset, a timeout, a
   * body broken off) as answered: a request a client sends to every target can cause them.
   * `status`: the 5xx a failure answered with; passive checks and the breaker count only
   * `passive.statuses` (any other shows a live target). `waitFrom`: where the latency sample starts,
   * when not at `sentAt` (the exchange's, past the time a streamed body waited for the client);
   * `sentAt` still identifies the try for the breaker and the outlier detection.
   */
  outcome (target: Target, ok: boolean, sentAt: number, answered: boolean, status?: number, waitFrom = sentAt): void {
    const now = performance.now()
    const failed = !ok && (status === undefined || countsAsFailure(this.#ejection, status))
    if (ok) {
      if (answered) target.latency.observe(now - waitFrom, now)
      target.outlier.success()
      target.recentFailures.answered(now)
    } else {
      target.latency.failed(this.#failureLatency(now - waitFrom, now), now)
      // Every failed try, any 5xx (a 500 too, unlike passive checks): the factor only moves traffic
      // to the targets that answer, and a 500 a client provokes on every target raises them all alike.
      target.recentFailures.failed(now)
      if (!failed) target.outlier.success()
      else if (target.outlier.failure(sentAt, now, down => this.#mayTakeOut(target, now, down, false), !answered)) this.#ejected(target, target.outlier.ejectedUntil - now)
    }
    const changed = target.breaker?.record(!failed, sentAt, now, !answered, this.#mayOpen)
    if (changed !== undefined) this.#events.breaker(this.name, target, changed)
  }

  /**
   * The latency sample of a failed try (peak EWMA counts failures, as Finagle's does): the time it
   * took, at most the response timeout (a body broken after minutes says nothing of the wait for a
   * head), and at least twice the highest estimate of the upstream's targets' answers, so that a
   * target failing fast (a 5xx, a refused connection) ranks behind those that answer, and a target
   * with no answer yet, or none for long (its estimate decayed to 0), does not look fast. Answers
   * only: measured against estimates that penalties had raised, each failure doubled the last one's
   * (to Infinity when every target fails), and latency no longer told targets apart.
   */
  #failureLatency (took: number, now: number): number {
    let highest = 0
    for (const t of this.#targets) highest = Math.max(highest, t.latency.answers(now))
    const response = this.timeouts.response
    return Math.max(response > 0 ? Math.min(took, response) : took, 2 * highest)
  }

  /**
   * Whether passive checks may eject `self` (a target), or `self` (a breaker) open, now: only while
   * fewer than passive.maxEjectionPercent of the targets are out (ejected, or kept out by their
   * breaker), so clients that can make targets fail cannot take the whole upstream out while its
   * health checks pass; an ejection never takes the last one available, a breaker may (`lastToo`:
   * it is there to fail fast, as for the lone target of an upstream). When none is available (all
   * failing their checks), only a target `down` is ejected (it ranks behind the others as least bad,
   * else a dead one among them kept its share); the 503s every target answers in an outage they
   * share ejected them up to the percentage, kept out for 30 s and more once recovered. Not capped when `down` (its
   * last failures had no answer): every dead target goes (health checks are off by default), else
   * those left in failed a share of the requests for ever.
   */
  #mayTakeOut (self: Target | CircuitBreaker, now: number, down: boolean, lastToo: boolean): boolean {
    let out = 0
    let otherAvailable = false
    let selfAvailable = false
    for (const t of this.#targets) {
      if (t === self || t.breaker === self) { selfAvailable = t.available(now); continue }
      if (t.outlier.ejected(now) || breakerDown(t.breaker, now) !== undefined) out++
      else if (t.available(now)) otherAvailable = true
    }
    return (otherAvailable || lastToo || (down && !selfAvailable)) && (down || out < maxEjected(this.#ejection, this.#targets.length))
  }

  /** Logs the ejection now, and its end when it comes (see #ejectionEnds). */
  #ejected (target: Target, forMs: number): void {
    // A target DNS discovery removed, failing a request it was finishing: no longer in service,
    // nothing to eject (nor a series of its to bring back, see Metrics.targetsRemoved).
    if (!this.#targets.includes(target)) return
    this.#events.ejected(this.name, target, forMs)
    this.#logEjectionEnd(target, forMs)
  }

  #logEjectionEnd (target: Target, inMs: number): void {
    clearTimeout(this.#ejectionEnds.get(target))
    this.#ejectionEnds.set(target, setTimeout(() => {
      this.#ejectionEnds.delete(target)
      this.#events.ejectionEnded(this.name, target)
    }, inMs).unref())
  }

  #forgetEjectionEnds (): void {
    for (const timer of this.#ejectionEnds.values()) clearTimeout(timer)
    this.#ejectionEnds.clear()
  }

  /**
   * The exchange with `target` is over (answered, failed or aborted): its slot goes to a request left
   * waiting on a target DNS discovery removed or that takes no traffic, if any (it has nowhere else to
   * go); else to the request that has waited longest for one, if any; else, if `target` takes traffic,
   * to the first request waiting on the target with the longest queue (a fast target drains a slow
   * one's queue). The slot of a removed target (its pool closed) goes to nobody, nor that of a target
   * that takes no traffic while another does: its queue goes to the others.
   */
  end (target: Target): void {
    target.inFlight--
    if (target.pool.closed) return
    if (target.waiting.length > 0 && !target.available(performance.now()) && this.#orphan(target)) return
    const w = (this.#orphans.length === 0 ? undefined : this.#orphanFor(target)) ?? target.waiting.shift() ?? this.#waiterFor(target)
    w?.admit(target)
  }

  /**
   * `target` takes no traffic: the requests waiting on it go to the free slots of the targets that
   * do, now or as they free, keyed requests and retries too, as a removed target's. False when no
   * target takes traffic: then (least-bad) its queue stays its own.
   */
  #orphan (target: Target): boolean {
    if (!this.#anyAvailable(performance.now())) return false
    if (!this.#orphans.includes(target)) this.#orphans.push(target)
    this.#admitOrphans()
    return true
  }

  /** The first request still waiting on a target that takes no traffic, if `target` does (or none does: least-bad). */
  #orphanFor (target: Target): Waiter | undefined {
    const now = performance.now()
    if (!target.available(now) && this.#anyAvailable(now)) return undefined
    for (let from = this.#orphans[0]; from !== undefined; from = this.#orphans[0]) {
      const w = from.waiting.shift()
      if (w !== undefined) return w
      this.#orphans.shift() // its waiters are served or gave up
    }
    return undefined
  }

  #anyAvailable (now: number): boolean {
    for (const t of this.#targets) if (t.available(now)) return true
    return false
  }

  #waiterFor (target: Target): Waiter | undefined {
    if (this.#sticky) return undefined
    let from: Target | undefined
    for (const t of this.#targets) if (t.waiting.length > (from?.waiting.length ?? 0) && t.waiting.first?.movable === true) from = t
    if (from === undefined || !target.available(performance.now())) return undefined
    const w = from.waiting.first as Waiter
    from.waiting.remove(w)
    return w
  }

  /** Whether `target` can take one more request now without undici queueing it. */
  hasRoom (target: Target): boolean {
    return target.inFlight < target.capacity
  }

  /** A request was refused (queue full) or waited too long for a connection: counted and logged. */
  busy (target: Target, reason: 'queue-full' | 'queue-timeout'): void {
    this.#events.busy(this.name, target, reason)
  }

  /** A request waited `ms` for a connection of `target`, then got one. */
  waited (ms: number): void {
    this.#events.waited(this.name, ms)
  }

  /**
   * Sets the active health of the targets at `url` (from this process's checks or, with workers, from
   * the primary's): every one, when several entries give the same address.
   */
  setTargetHealth (url: string, healthy: boolean, reason?: string): boolean {
    let changed: Target | undefined
    for (const t of this.#targets) {
      if (t.url !== url || t.healthy === healthy) continue
      t.healthy = healthy
      changed ??= t
    }
    if (changed === undefined) return false
    this.#events.health(this.name, changed, healthy, reason)
    // Its queue need not wait for a slot of its own to free: a hung target's may not before queue.timeout.
    if (!healthy) for (const t of this.#targets) if (t.url === url && t.waiting.length > 0) this.#orphan(t)
    return true
  }

  /**
   * Replaces the targets that come from config entry `source` (DNS discovery). Targets kept keep
   * their pool and state; removed ones finish their requests, then close, and the requests waiting on
   * them go to the free slots of the others. An added target at the address of another entry's target
   * takes its active health (they share a health check); one at the address of a target removed
   * within REMOVED_KEPT_MS, its ejection and breaker (as the health checks keep a verdict while the
   * address is back by their next interval), else an address DNS drops for a round comes back afresh.
   */
  setTargets (source: number, addresses: readonly TargetAddress[]): void {
    const current = this.#targets.filter(t => t.source === source)
    const removed = current.filter(t => !addresses.some(a => a.url === t.url))
    this.#forgetRemoved(performance.now(), removed)
    const added = addresses.filter(a => !current.some(t => t.url === a.url)).map(a => {
      const t = this.#newTarget(a, source)
      const twin = this.#targets.find(x => x.url === a.url)
      if (twin !== undefined) t.healthy = twin.healthy
      return t
    })
    this.#unresolved.delete(source)
    this.#forgetLearned()
    if (removed.length === 0 && added.length === 0) return
    this.#targets = [...this.#targets.filter(t => !removed.includes(t)), ...added]
    this.#balancer = createBalancer(this.config, this.#targets)
    for (const t of removed) {
      clearTimeout(this.#ejectionEnds.get(t))
      this.#ejectionEnds.delete(t)
      // Rejects (ClientDestroyedError) once the pools were destroyed (the shutdown deadline): nothing left to close.
      t.pool.close().catch(() => {})
      if (t.waiting.length > 0) this.#orphans.push(t)
    }
    this.#admitOrphans()
    this.#events.targetsChanged(this.name, added.map(a => a.url), removed.map(t => t.url))
  }

  /** Requests waiting on removed targets go now to the targets with a free slot; the rest wait for one (end()). */
  #admitOrphans (): void {
    for (const t of this.#targets) {
      while (this.#orphans.length > 0 && this.hasRoom(t)) {
        const w = this.#orphanFor(t)
        if (w === undefined) break
        w.admit(t)
      }
    }
  }

  /**
   * `retired`: this upstream in the configs a reload replaced, still draining; what they hold on a
   * target at the same URL shows in its numbers (once, should two entries give the same address).
   */
  snapshot (retired: readonly Upstream[] = []): UpstreamSnapshot {
    const now = performance.now()
    const shown = new Set<string>()
    const retiredAt = (url: string): Target[] => {
      if (shown.has(url)) return []
      shown.add(url)
      return retired.flatMap(u => u.targets.filter(t => t.url === url))
    }
    return {
      name: this.name,
      balance: this.config.balance ?? 'round-robin',
      targets: this.#targets.map(t => t.snapshot(now, retiredAt(t.url))),
      retryBudget: Math.floor(this.retry.budget.balance)
    }
  }

  /**
   * On reload: each target that was already in `previous` (same URL) keeps what the health checks,
   * outlier detection and its breaker had learned, so that a reload never sends traffic back to a
   * dead target; the retry budget keeps its balance, so a reload does not refill it in an outage.
   * Active health carries over only while this upstream still has health checks to restore it.
   * Targets that DNS discovery creates take theirs too, until every `resolve: dns` entry has had
   * addresses (however long its lookups fail: its first targets are still to come).
   */
  inheritState (previous: Upstream): void {
    const keepHealth = this.healthCheck !== undefined && previous.healthCheck !== undefined
    this.#learned = new Map(previous.targets.map(p => [p.url, { healthy: keepHealth ? p.healthy : undefined, outlier: p.outlier.memory(), breaker: p.breaker?.memory() }]))
    this.retry.budget.inherit(previous.retry.budget)
    this.#removed = new Map(previous.#removed)
    previous.#forgetEjectionEnds()
    for (const t of this.#targets) this.#takeOver(t)
    this.#forgetLearned()
  }

  /**
   * At the swap, what live requests taught `previous` since inheritState (a build may take seconds:
   * plugin setups, stores): its breakers, passive ejections and retry budget, which only traffic
   * moves. An outage that began during the build is not sent the new runtime's traffic again.
   */
  catchUp (previous: Upstream): void {
    this.retry.budget.inherit(previous.retry.budget)
    const byUrl = new Map(this.#targets.map(t => [t.url, t]))
    const now = performance.now()
    for (const p of previous.targets) {
      const t = byUrl.get(p.url)
      if (t === undefined) continue
      if (p.breaker !== undefined) t.breaker?.inherit(p.breaker.memory())
      t.outlier.inherit(p.outlier.memory())
      if (t.outlier.ejected(now)) this.#logEjectionEnd(t, t.outlier.ejectedUntil - now)
    }
    previous.#forgetEjectionEnds()
  }

  /**
   * Drops what targets removed more than REMOVED_KEPT_MS ago had learned, then keeps that of
   * `removed`, those with something to keep (a failure, an ejection, a breaker not closed or with
   * failures), at most REMOVED_KEPT_MAX, the oldest dropped first.
   */
  #forgetRemoved (now: number, removed: readonly Target[]): void {
    for (const [url, r] of this.#removed) {
      if (now - r.at < REMOVED_KEPT_MS) break
      this.#removed.delete(url)
    }
    for (const t of removed) {
      const outlier = t.outlier.memory()
      const breaker = t.breaker?.memory()
      this.#removed.delete(t.url)
      if (outlier.failures === 0 && outlier.ejectedUntil === 0 && (breaker === undefined || (breaker.state === 'closed' && breaker.counts[1] + breaker.counts[3] === 0))) continue
      this.#removed.set(t.url, { learned: { healthy: undefined, outlier, breaker }, at: now })
      if (this.#removed.size > REMOVED_KEPT_MAX) this.#removed.delete(this.#removed.keys().next().value as string)
    }
  }

  /** Once every entry has had addresses: targets discovery adds later are new, with nothing to inherit. */
  #forgetLearned (): void {
    if (this.#unresolved.size === 0) this.#learned = undefined
  }

  /** Lets in-flight requests finish, then closes every connection. */
  async close (): Promise<void> {
    this.#forgetEjectionEnds()
    await Promise.all(this.#targets.map(t => t.pool.close()))
  }

  /** Cuts every connection at once, whatever is under way (the end of a shutdown's deadline). */
  async destroy (): Promise<void> {
    this.#forgetEjectionEnds()
    await Promise.allSettled(this.#targets.map(t => t.pool.destroy()))
  }

  #newTarget (a: TargetAddress, source: number): Target {
    return this.#takeOver(new Target(a.url, a.host, a.weight, source, this.#pool, this.#passive, this.#breaker))
  }

  #takeOver (t: Target): Target {
    // What this upstream learned since the reload is newer than what the previous one had.
    const learned = this.#removed.get(t.url)?.learned ?? this.#learned?.get(t.url)
    this.#removed.delete(t.url)
    if (learned === undefined) return t
    if (learned.healthy !== undefined) t.healthy = learned.healthy
    t.outlier.inherit(learned.outlier)
    if (learned.breaker !== undefined) t.breaker?.inherit(learned.breaker)
    const now = performance.now()
    if (t.outlier.ejected(now)) this.#logEjectionEnd(t, t.outlier.ejectedUntil - now)
    return t
  }
}
