import type { Target } from '../target.ts'
import { load, usable, type Balancer } from './balancer.ts'
import { FailureBaseline } from './recent-failures.ts'

/**
 * Power of two choices with peak-EWMA latency (as Finagle and Linkerd do): two distinct usable
 * targets at random, and the one with the lower latency x (in flight + queued + 1) / weight wins,
 * times its recent failures' factor (FailureBaseline, over the usable targets). Slow or
 * overloaded targets lose traffic at once without a global scan, and randomness avoids the herd
 * that pure least-loaded picking causes when many gateways share targets.
 */
export class P2cEwma implements Balancer {
  readonly #targets: readonly Target[]
  readonly #failures = new FailureBaseline()

  constructor (targets: readonly Target[]) {
    this.#targets = targets
  }

  pick (_req: unknown, now: number, exclude: readonly Target[] | undefined, roomOnly = false, anyState = false): Target | undefined {
    const targets = this.#targets
    let n = 0
    const failures = this.#failures
    failures.reset()
    for (const t of targets) {
      if (!usable(t, now, exclude, roomOnly, anyState)) continue
      n++
      failures.add(t.recentFailures, now, load(t), t.weight)
    }
    if (n === 0) return undefined
    const a = Math.floor(Math.random() * n)
    if (n === 1) return this.#nth(a, now, exclude, roomOnly, anyState)
    let b = Math.floor(Math.random() * (n - 1))
    if (b >= a) b++
    const ta = this.#nth(a, now, exclude, roomOnly, anyState)
    const tb = this.#nth(b, now, exclude, roomOnly, anyState)
    return cost(ta, now, failures) <= cost(tb, now, failures) ? ta : tb
  }

  /** The k-th usable target. */
  #nth (k: number, now: number, exclude: readonly Target[] | undefined, roomOnly: boolean, anyState: boolean): Target {
    for (const t of this.#targets) if (usable(t, now, exclude, roomOnly, anyState) && k-- === 0) return t
    throw new Error('unreachable: fewer usable targets than counted')
  }
}

/**
 * +1 ms so targets with no latency yet still compare by load. The failures' factor, not the latency
 * penalty alone (twice the answers' latency): a target failing at once has no load, and the others'
 * load outweighed the penalty.
 */
function cost (t: Target, now: number, failures: FailureBaseline): number {
  return (t.latency.estimate(now) + 1) * (load(t) + 1) * failures.factor(t.recentFailures, now, t.weight) / t.weight
}
