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
 * How many points each target owns: POINTS_PER_WEIGHT per unit of weight once the weights are divided
 * by their greatest common divisor (weights 1000, 1000 are 1, 1), scaled down so that the ring has at
 * most MAX_POINTS, and at least one per target.
 */
function pointCounts (weights: readonly number[]): number[] {
  const divisor = weights.reduce(gcd, 0)
  const units = weights.map(w => w / divisor)
  const sum = units.reduce((a, b) => a + b, 0)
  const perUnit = Math.min(POINTS_PER_WEIGHT, MAX_POINTS / sum)
  return units.map(u => Math.max(1, Math.floor(u * perUnit)))
}

function gcd (a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b]
  return a
}

/**
 * Consistent hashing on a ring (Karger et al., as Envoy's ring_hash and nginx's `hash ... consistent`):
 * each target owns points in proportion to its weight (pointCounts), placed by hashing its URL; a
 * key goes to the first point at or after its own hash. When a target leaves (unavailable, or gone
 * from DNS), only its own keys move, each to the next target on the ring; every other key stays
 * where it was. Requests without a key are spread by smooth weighted round-robin.
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
