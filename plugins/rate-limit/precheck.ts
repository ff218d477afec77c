import { LRUCache } from 'lru-cache'
import { longestWait, type AlgorithmCode } from './algorithms.ts'
import type { Decision } from './headers.ts'
import type { Plan } from './plans.ts'

const MAX_KEYS = 10_000
/** Every entry counts one towards maxSize: the bound is in keys. */
const ONE = () => 1

/**
 * How long a shared store's rejection is trusted without asking it again: it may have lost the
 * counter since (a FLUSHALL, a Redis restarted without persistence) and would let the key pass.
 */
export const SHARED_RECHECK_MS = 5_000

/** A key's rejection: under which plan, when it may pass, and until when no store call is made for it. */
interface Rejection { readonly plan: Plan, readonly until: number, readonly trustedUntil: number }

/**
 * Keys a store said are over their limit, each with the time before which no request can pass
 * (local monotonic clock). A rejected request changes no counter, so rejecting locally until then
 * changes nothing the store would decide: other instances can only add requests, which only push
 * that time later. The time is counted from when the store call was sent (before the script ran),
 * so it never ends later than the store's own answer would. On a memory store it also keeps a key
 * rejected whose counter a full store evicted (a flood of new keys on any route). A wait is held
 * to the longest its limit can give: a longer one (a state stored before the clock stepped back)
 * would hold the key on the local clock whatever the store then says.
 */
export class Precheck {
  // One cache for the route whatever its plans, grown as keys come: with `max`, lru-cache allocates
  // its index for every entry up front (260 kB), and one per route and plan came to hundreds of MB.
  // One rejection per key: a key two plans share (a limit by ip, consumers with overrides) keeps the latest.
  readonly #rejected = new LRUCache<string, Rejection>({ maxSize: MAX_KEYS, sizeCalculation: ONE })
  readonly #recheckMs: number

  /** `recheckMs`: how long a rejection is trusted before the store is asked again (Infinity: until the key may pass). */
  constructor (recheckMs: number) {
    this.#recheckMs = recheckMs
  }

  /** A decision to reject with, when some key of the request is known to be blocked; else undefined. */
  check (plan: Plan, keys: readonly string[], now: number): Decision | undefined {
    if (this.#rejected.size === 0) return undefined
    let d: number[] | undefined
    for (let i = 0; i < keys.length; i++) {
      const r = this.#rejected.get(keys[i] as string)
      if (r === undefined || r.plan !== plan) continue
      if (r.trustedUntil <= now) { this.#rejected.delete(keys[i] as string); continue }
      d ??= [0, ...plan.limits.flatMap(l => [1, l.requests, 0])]
      d[3 * i + 1] = 0
      d[3 * i + 2] = 0
      d[3 * i + 3] = Math.ceil(r.until - now)
    }
    return d
  }

  /** Remembers the keys a store decision rejected; `sentAt` is when the store call was made. */
  remember (plan: Plan, keys: readonly string[], d: Decision, sentAt: number): void {
    const args = plan.args
    for (let i = 0; i < keys.length; i++) {
      if (d[3 * i + 1] !== 0) continue
      const longest = longestWait(args[4 * i] as AlgorithmCode, Number(args[4 * i + 1]), Number(args[4 * i + 2]), Number(args[4 * i + 3]))
      const ms = Math.min(d[3 * i + 3] as number, longest)
      this.#rejected.set(keys[i] as string, { plan, until: sentAt + ms, trustedUntil: sentAt + Math.min(ms, this.#recheckMs) })
    }
  }
}
