import type { UpstreamConfig } from '../config/schema.ts'

/** Passive health settings, in milliseconds. */
export interface PassiveSettings {
  readonly consecutiveFailures: number
  readonly baseEjectionMs: number
  readonly maxEjectionMs: number
}

export const DEFAULT_PASSIVE: PassiveSettings = { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000 }

/**
 * What passive checks hold against a whole upstream (as Envoy's outlier detection): which statuses
 * count as failures, and how many of its targets may be out at once.
 */
export interface EjectionLimits {
  /** 5xx statuses that count as failures; any other answer shows a live target (a 500 is most often the request's own bug). */
  readonly statuses: readonly number[]
  /**
   * Most targets ejected at once, as a percentage of the upstream's (rounded down, at least one), for
   * failures a client can provoke: not for a target down (see OutlierState.failure).
   */
  readonly maxEjectionPercent: number
}

const DEFAULT_EJECTION_LIMITS: EjectionLimits = { statuses: [502, 503, 504], maxEjectionPercent: 50 }

export function ejectionLimits (passive: UpstreamConfig['passive']): EjectionLimits {
  const p = passive === false ? undefined : passive
  return {
    statuses: p?.statuses ?? DEFAULT_EJECTION_LIMITS.statuses,
    maxEjectionPercent: p?.maxEjectionPercent ?? DEFAULT_EJECTION_LIMITS.maxEjectionPercent
  }
}

/** Whether an answer with `status` (5xx, or none past 599) counts as a failure. */
export function countsAsFailure (limits: EjectionLimits, status: number): boolean {
  return status > 599 || limits.statuses.includes(status)
}

/** How many of `targets` may be ejected at once. */
export function maxEjected (limits: EjectionLimits, targets: number): number {
  return Math.max(1, Math.floor(targets * limits.maxEjectionPercent / 100))
}

/** What outlier detection has learned of a target, as plain values that can outlive it (reload). */
export interface OutlierMemory {
  readonly failures: number
  readonly unanswered: number
  readonly streak: number
  readonly ejectedUntil: number
}

/**
 * Outlier detection for one target: after N consecutive failures of live requests it is ejected
 * for a while. The ejection doubles on each repeat and resets once the target has stayed in
 * for longer than the longest ejection. Times are performance.now() milliseconds.
 */
export class OutlierState {
  readonly #settings: PassiveSettings | undefined
  #failures = 0
  /** Of those, how many in a row up to the last were tries with no answer. */
  #unanswered = 0
  /** Ejections in a row, for the backoff. */
  #streak = 0
  /** When the current (or last) ejection ends; 0 when never ejected. */
  ejectedUntil = 0

  constructor (settings: PassiveSettings | undefined) {
    this.#settings = settings
  }

  memory (): OutlierMemory {
    return { failures: this.#failures, unanswered: this.#unanswered, streak: this.#streak, ejectedUntil: this.ejectedUntil }
  }

  /** Takes over what the same target learned in the previous runtime (with passive checks on here). */
  inherit (previous: OutlierMemory): void {
    if (this.#settings === undefined) return
    this.#failures = previous.failures
    this.#unanswered = previous.unanswered
    this.#streak = previous.streak
    this.ejectedUntil = previous.ejectedUntil
  }

  ejected (now: number): boolean {
    return this.ejectedUntil > now
  }

  success (): void {
    this.#failures = this.#unanswered = 0
  }

  /**
   * Counts the failure of a request sent at `sentAt`; true when it ejects the target. One sent before
   * the last ejection ended does not count (a late answer: the target may have recovered since).
   * `unanswered`: the try could not connect (a connection refused, a connect timeout),
   * else it answered with a status that counts. `mayEject(down)`: whether the upstream lets this
   * target out now (EjectionLimits); `down` when its last consecutiveFailures failures all had no
   * answer, as a target down gives (a client provokes statuses far more easily). While the upstream
   * does not let it out, each further failure asks again.
   */
  failure (sentAt: number, now: number, mayEject: (down: boolean) => boolean = () => true, unanswered = false): boolean {
    const s = this.#settings
    if (s === undefined || sentAt < this.ejectedUntil) return false
    this.#unanswered = unanswered ? this.#unanswered + 1 : 0
    if (++this.#failures < s.consecutiveFailures || !mayEject(this.#unanswered >= s.consecutiveFailures)) return false
    if (this.ejectedUntil !== 0 && now - this.ejectedUntil > s.maxEjectionMs) this.#streak = 0
    this.ejectedUntil = now + Math.min(s.baseEjectionMs * 2 ** this.#streak, s.maxEjectionMs)
    this.#streak++
    this.#failures = this.#unanswered = 0
    return true
  }
}
