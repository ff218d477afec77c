import type { Target } from '../target.ts'
import { usable, type Balancer, type BalancedRequest } from './balancer.ts'
import { hash32 } from './hash.ts'
import type { KeyReader } from './hash-key.ts'

/** Points per unit of weight: enough for an even spread (about +-10% per target) with a small ring. */
const POINTS_PER_WEIGHT = 160

/**
 * Consistent hashing on a ring (Karger et al., as Envoy's ring_hash and nginx's `hash ... consistent`):
 * each target owns POINTS_PER_WEIGHT x weight points placed by hashing its URL; a key goes to the
 * first point at or after its own hash. When a target leaves (unavailable, or gone from DNS), only
 * its own keys move, each to the next target on the ring; every other key stays where it was.
 * Requests without a key are spread round-robin.
 * A keyed request stays with its target even when that target has no free slot (it queues there):
 * moving keys on every burst would undo the locality hashing is for. A keyless one skips full targets.
 */
export class ConsistentHash implements Balancer {
  readonly #targets: readonly Target[]
  readonly #readKey: KeyReader
  /** Sorted point hashes, and the index of the target owning each point. */
  readonly #points: Uint32Array
  readonly #owners: Uint32Array
  #next = 0

  constructor (targets: readonly Target[], readKey: KeyReader) {
    this.#targets = targets
    this.#readKey = readKey
    const points: Array<[hash: number, owner: number]> = []
    targets.forEach((t, i) => {
      for (let v = 0; v < POINTS_PER_WEIGHT * t.weight; v++) points.push([hash32(`${t.url}#${v}`), i])
    })
    points.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    this.#points = Uint32Array.from(points, p => p[0])
    this.#owners = Uint32Array.from(points, p => p[1])
  }

  pick (req: BalancedRequest, now: number, exclude: readonly Target[] | undefined, roomOnly = false, anyState = false): Target | undefined {
    const key = this.#readKey(req)
    const n = this.#points.length
    let at: number
    if (key === undefined) {
      at = this.#next
      this.#next = (this.#next + POINTS_PER_WEIGHT + 1) % n // lands on a different target most of the time
    } else {
      at = this.#firstAtOrAfter(hash32(key))
    }
    // Walk clockwise past points of unusable targets: the key moves to the next target, no further.
    const room = roomOnly && key === undefined
    for (let k = 0; k < n; k++) {
      const t = this.#targets[this.#owners[(at + k) % n] as number] as Target
      if (usable(t, now, exclude, room, anyState)) return t
    }
    return undefined
  }

  #firstAtOrAfter (h: number): number {
    const points = this.#points
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((points[mid] as number) < h) lo = mid + 1
      else hi = mid
    }
    return lo === points.length ? 0 : lo
  }
}
