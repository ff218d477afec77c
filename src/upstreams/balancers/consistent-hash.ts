import type { Target } from '../target.ts'
import { usable, type Balancer, type BalancedRequest } from './balancer.ts'
import { fnv1a, hash32, hash32Numbered } from './hash.ts'
import type { KeyReader } from './hash-key.ts'
import { RoundRobin } from './round-robin.ts'

/** Points per unit of weight: enough for an even spread (about +-10% per target) with a small ring. */
const POINTS_PER_WEIGHT = 160
/**
 * The most points on a ring (Envoy's maximum_ring_size is the same idea): built on every DNS change
 * and reload, 160 x a sum of weights up to 1000 each took seconds and hundreds of MB.
 */
export const MAX_POINTS = 65_536
/** A point is packed as hash x OWNERS + target index in one double (exact below 2^53), so a plain numeric sort orders both. */
const OWNERS = 2 ** 21

/**
 * How many points each target owns: the same whole number of points per unit of weight for every
 * target (POINTS_PER_WEIGHT, fewer when the ring would pass MAX_POINTS; a fraction when the weights
 * sum past it), at least one. A weight changed by one adds or drops a few of its own points, and
 * moves other targets' counts only when the points per unit change: a target's points are hashed
 * from its URL and number (0, 1, ...), so the points it keeps stay where they were, with their keys.
 */
function pointCounts (weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0)
  const perUnit = sum > MAX_POINTS ? MAX_POINTS / sum : Math.min(POINTS_PER_WEIGHT, Math.floor(MAX_POINTS / sum))
  return weights.map(w => Math.max(1, Math.floor(w * perUnit)))
}

/**
 * Consistent hashing on a ring (Karger et al., as Envoy's ring_hash and nginx's `hash ... consistent`):
 * each target owns points in proportion to its weight (pointCounts), placed by hashing its URL; a
 * key goes to the first point at or after its own hash. When a target becomes unavailable, only its
 * own keys move, each to the next target on the ring; every other key stays where it was. A rebuilt
 * ring (a reload, a DNS change) moves only the keys of the points added or dropped: those of the
 * target that left, or whose weight changed, and, when the points per unit of weight change (the
 * weights sum past 409), a share of everyone's.
 * Requests without a key are spread by smooth weighted round-robin.
 * A keyed request stays with its target even when that target has no free slot (it queues there):
 * moving keys on every burst would undo the locality hashing is for. A keyless one skips full targets.
 */
export class ConsistentHash implements Balancer {
  readonly #targets: readonly Target[]
  readonly #readKey: KeyReader
  /** Sorted point hashes, and the index of the target owning each point. */
  readonly #points: Uint32Array
  readonly #owners: Uint16Array | Uint32Array
  readonly #keyless: RoundRobin

  constructor (targets: readonly Target[], readKey: KeyReader) {
    this.#targets = targets
    this.#readKey = readKey
    this.#keyless = new RoundRobin(targets)
    const counts = pointCounts(targets.map(t => t.weight))
    const packed = new Float64Array(counts.reduce((a, b) => a + b, 0))
    let at = 0
    targets.forEach((t, i) => {
      const url = fnv1a(t.url)
      for (let v = 0; v < (counts[i] as number); v++) packed[at++] = hash32Numbered(url, v) * OWNERS + i
    })
    packed.sort() // by hash, then target index
    this.#points = new Uint32Array(packed.length)
    this.#owners = targets.length <= 65_536 ? new Uint16Array(packed.length) : new Uint32Array(packed.length)
    for (let k = 0; k < packed.length; k++) {
      const p = packed[k] as number
      const owner = p % OWNERS
      this.#points[k] = (p - owner) / OWNERS
      this.#owners[k] = owner
    }
  }

  /** How many points the ring has. */
  get size (): number { return this.#points.length }

  pick (req: BalancedRequest, now: number, exclude: readonly Target[] | undefined, roomOnly = false, anyState = false): Target | undefined {
    const key = this.#readKey(req)
    if (key === undefined) return this.#keyless.pick(req, now, exclude, roomOnly, anyState)
    // Walk clockwise past points of unusable targets: the key moves to the next target, no further.
    const n = this.#points.length
    const at = this.#firstAtOrAfter(hash32(key))
    for (let k = 0; k < n; k++) {
      const t = this.#targets[this.#owners[(at + k) % n] as number] as Target
      if (usable(t, now, exclude, false, anyState)) return t
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
