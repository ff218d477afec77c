import type { Store } from '../../src/index.ts'

/** How long an offset learnt from an answer is used: from 10 to 20 s. */
const PERIOD_MS = 10_000

/**
 * Where a shared store's clock (Redis TIME, ms since the epoch) stands from this process's
 * monotonic clock (performance.now()), learnt from the answers of scripts that return the server's
 * time (rate-limit's decisions, basic-auth's failure counts), so that a call can carry the server
 * time after which the gateway has given up on it (commandTimeout): a call Redis runs later (queued
 * behind a pause or a slow command) then counts nothing, as the gateway answered without it. No
 * clock is trusted to agree with another.
 *
 * A call made at `sentAt` and run at the server's `now` shows that the offset is at
 * most `now - sentAt` (the call took some time to get there). The largest such bound of the last
 * 10 to 20 s is used: too large only moves deadlines later (a late call then counts, as without
 * a deadline); it follows a server clock that was set forward at the next answer, and the nodes of a
 * cluster whose clocks differ. With no answer in the last 20 s (a pause of Redis's writes), the
 * last offset learnt stays in use: calls queued behind the pause must count nothing either (a call
 * Redis finds past its deadline still answers, with the server's time, so the offset follows then).
 * Before any answer (a gateway that just started), calls carry no deadline.
 */
export class ServerClock {
  #offset = -Infinity
  #before = -Infinity
  #since = -Infinity

  /** A call made at `sentAt` (performance.now()) was run at the server's `now`. */
  observe (sentAt: number, now: number): void {
    const offset = now - sentAt
    if (sentAt - this.#since >= PERIOD_MS) {
      this.#before = sentAt - this.#since >= 2 * PERIOD_MS ? -Infinity : this.#offset
      this.#offset = offset
      this.#since = sentAt
    } else if (offset > this.#offset) {
      this.#offset = offset
    }
  }

  /** The server time after which a call made at `sentAt` has timed out after `timeoutMs`; 0 when unknown. */
  deadline (sentAt: number, timeoutMs: number): number {
    if (this.#since === -Infinity) return 0
    return Math.ceil(sentAt + timeoutMs + Math.max(this.#offset, this.#before))
  }
}

const clocks = new WeakMap<Store, ServerClock>()

/** The clock of a store, one for every route and plugin using it (stores outlive reloads, and so does what was learnt). */
export function serverClock (store: Store): ServerClock {
  let clock = clocks.get(store)
  if (clock === undefined) clocks.set(store, clock = new ServerClock())
  return clock
}
