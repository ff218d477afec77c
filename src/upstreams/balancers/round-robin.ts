import type { Target } from '../target.ts'
import { usable, type Balancer } from './balancer.ts'

/**
 * Smooth weighted round-robin, nginx's algorithm: each pick adds every usable target's weight to
 * its score, takes the highest score and lowers it by the total. Weights 5,1,1 give a a b a c a a
 * rather than a a a a a b c, and the sequence is exact over every cycle of sum(weights) picks.
 */
export class RoundRobin implements Balancer {
  readonly #targets: readonly Target[]
  readonly #score: Float64Array

  constructor (targets: readonly Target[]) {
    this.#targets = targets
    this.#score = new Float64Array(targets.length)
  }

  pick (_req: unknown, now: number, exclude: readonly Target[] | undefined, roomOnly = false, anyState = false): Target | undefined {
    const targets = this.#targets
    const score = this.#score
    let total = 0
    let best = -1
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as Target
      if (!usable(t, now, exclude, roomOnly, anyState)) continue
      score[i] = (score[i] as number) + t.weight
      total += t.weight
      if (best === -1 || (score[i] as number) > (score[best] as number)) best = i
    }
    if (best === -1) return undefined
    score[best] = (score[best] as number) - total
    return targets[best]
  }
}
