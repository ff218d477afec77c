import { LRUCache } from 'lru-cache'
import type { Decision } from './headers.ts'
import type { Plan } from './plans.ts'

const MAX_KEYS = 10_000

/**
 * Keys a store said are over their limit, each with the time before which no request can pass
 * (local monotonic clock). A rejected request changes no counter, so rejecting locally until then
 * changes nothing the store would decide: other instances can only add requests, which only push
 * that time later. The time is counted from when the store call was sent (before the script ran),
 * so it never ends later than the store's own answer would. On a memory store it also keeps a key
 * rejected whose counter a full store evicted (a flood of new keys on any route).
 */
export class Precheck {
  readonly #until = new WeakMap<Plan, LRUCache<string, number>>()

  /** A decision to reject with, when some key of the request is known to be blocked; else undefined. */
  check (plan: Plan, keys: readonly string[], now: number): Decision | undefined {
    const blocked = this.#until.get(plan)
    if (blocked === undefined) return undefined
    let d: number[] | undefined
    for (let i = 0; i < keys.length; i++) {
      const until = blocked.get(keys[i] as string)
      if (until === undefined) continue
      if (until <= now) { blocked.delete(keys[i] as string); continue }
      d ??= [0, ...plan.limits.flatMap(l => [1, l.requests, 0])]
      d[3 * i + 1] = 0
      d[3 * i + 2] = 0
      d[3 * i + 3] = Math.ceil(until - now)
    }
    return d
  }

  /** Remembers the keys a store decision rejected; `sentAt` is when the store call was made. */
  remember (plan: Plan, keys: readonly string[], d: Decision, sentAt: number): void {
    let blocked = this.#until.get(plan)
    if (blocked === undefined) this.#until.set(plan, blocked = new LRUCache({ max: MAX_KEYS }))
    for (let i = 0; i < keys.length; i++) if (d[3 * i + 1] === 0) blocked.set(keys[i] as string, sentAt + (d[3 * i + 3] as number))
  }
}
