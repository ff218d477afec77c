import type { Target } from '../target.ts'
import { load, usable, type Balancer } from './balancer.ts'
import { FailureBaseline } from './recent-failures.ts'

/**
 * Weighted least-connections: the usable target with the fewest requests in flight or queued per
 * unit of weight, counting the one about to be sent ((load + 1) / weight, so at rest, and at low
 * concurrency, the heavier target is preferred), times its recent failures' factor (FailureBaseline,
 * over the usable targets: a target failing at once has no load, and would take most requests).
 * Ties go to the next target in turn after the last one picked, so equal targets share evenly.
 */
export class LeastConnections implements Balancer {
  readonly #targets: readonly Target[]
  readonly #failures = new FailureBaseline()
  #start = 0

  constructor (targets: readonly Target[]) {
    this.#targets = targets
  }

  pick (_req: unknown, now: number, exclude: readonly Target[] | undefined, roomOnly = false, anyState = false): Target | undefined {
    const targets = this.#targets
    const n = targets.length
    const start = this.#start
    const failures = this.#failures
    failures.reset()
    for (const t of targets) if (usable(t, now, exclude, roomOnly, anyState)) failures.add(t.recentFailures, now, load(t), t.weight)
    let best: Target | undefined
    let bestCost = 0
    let at = start
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n
      const t = targets[i] as Target
      if (!usable(t, now, exclude, roomOnly, anyState)) continue
      // cost / t.weight < bestCost / best.weight, without dividing (factors are powers of 2: ties stay exact)
      const cost = (load(t) + 1) * failures.factor(t.recentFailures, now, t.weight)
      if (best === undefined || cost * best.weight < bestCost * t.weight) { best = t; bestCost = cost; at = i }
    }
    // The next scan starts after the one picked (not after `start`), so an unusable target's turn
    // does not go to its neighbour twice.
    this.#start = at + 1 === n ? 0 : at + 1
    return best
  }
}
