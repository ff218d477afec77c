import type { Entry } from './entry.ts'

interface Flight { readonly done: Promise<Entry | undefined>, readonly resolve: (e: Entry | undefined) => void, readonly timer: NodeJS.Timeout }

/**
 * Concurrent misses for one key: the first request (the leader) goes upstream, the others wait for
 * what it stores. A leader that stores nothing (private, uncacheable, failed) or takes longer than
 * the timeout releases the waiters with nothing, and each then goes upstream itself.
 */
export class Collapser {
  readonly #flights = new Map<string, Flight>()
  readonly #timeoutMs: number

  constructor (timeoutMs: number) { this.#timeoutMs = timeoutMs }

  /** The entry another request is fetching for `key`, when one is; undefined when the caller should lead. */
  waitFor (key: string): Promise<Entry | undefined> | undefined {
    return this.#flights.get(key)?.done
  }

  /** Makes the caller the leader for `key`; call the returned function once with what was stored (or undefined). */
  lead (key: string): (e: Entry | undefined) => void {
    let resolve!: (e: Entry | undefined) => void
    const done = new Promise<Entry | undefined>(r => { resolve = r })
    const finish = (e: Entry | undefined) => {
      const f = this.#flights.get(key)
      if (f?.done !== done) return
      clearTimeout(f.timer)
      this.#flights.delete(key)
      resolve(e)
    }
    const timer = setTimeout(finish, this.#timeoutMs, undefined)
    timer.unref()
    this.#flights.set(key, { done, resolve, timer })
    return finish
  }
}
