import { defineScript, StoreError, type Store } from '../../src/index.ts'

/** SET NX PX: takes the key's fetch for every instance sharing the store, for at most `ttlMs`. */
const TAKE = defineScript<number>({
  name: 'cache-fetch-take',
  lua: "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end return 0",
  local: (data, keys, args) => {
    if (data.get(keys[0] as string) !== undefined) return 0
    data.set(keys[0] as string, args[0] as string, Number(args[1]))
    return 1
  }
})

/** Gives the fetch back, only if it is still this one's (not another instance's after it expired). */
const GIVE = defineScript<number>({
  name: 'cache-fetch-give',
  lua: "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
  local: (data, keys, args) => {
    if (String(data.get(keys[0] as string)) !== args[0]) return 0
    data.delete(keys[0] as string)
    return 1
  }
})

/**
 * A key's fetch lock: `f:<key>#fetch`, outside the entries' `c:` on purpose: URL, prefix and full
 * purges (prefixes of `c:`) neither count nor delete other instances' fetches in flight.
 */
const lock = (key: string): string => `f:${key}#fetch`

/**
 * A give-back the store failed (a failover, an outage) is tried again this often, until the fetch
 * would have expired anyway: the other instances wait on a fetch still held, for collapseTimeout.
 */
const GIVE_RETRY_MS = 250

/**
 * Collapsing across instances on a shared (Redis) store: one instance fetches a missing key for
 * all, the others poll the store for what it stores. In-process collapsing (Collapser) comes
 * first, so each instance has one request at most taking part here. A store that fails counts as
 * free: each instance then fetches for itself, as without the store.
 */
export class SharedFetch {
  readonly #store: Store
  readonly #ttlMs: number

  constructor (store: Store, ttlMs: number) {
    this.#store = store
    this.#ttlMs = ttlMs
  }

  /** Takes the fetch of `key`: a function that gives it back, or undefined when another instance has it. */
  async take (key: string, token: string): Promise<(() => void) | undefined> {
    const held = lock(key)
    // Read before the take: a fetch taken expires no sooner.
    const expires = performance.now() + this.#ttlMs
    const taken = await this.#store.run(TAKE, [held], [token, this.#ttlMs]).catch(() => undefined)
    if (taken === 0) return undefined
    // A take that failed is a free fetch; it may still have run (a timeout): given back once, not retried.
    const retryUntil = taken === 1 ? expires : -Infinity
    let given = false
    return () => {
      if (given) return
      given = true
      this.#give(held, token, retryUntil)
    }
  }

  #give (lock: string, token: string, retryUntil: number): void {
    this.#store.run(GIVE, [lock], [token]).catch((err: unknown) => {
      if (err instanceof StoreError && err.code === 'STORE_UNAVAILABLE' && performance.now() + GIVE_RETRY_MS < retryUntil) {
        setTimeout(() => this.#give(lock, token, retryUntil), GIVE_RETRY_MS).unref()
      }
    })
  }

  /** Whether another instance still holds the fetch of `key` (false when the store fails). */
  async held (key: string): Promise<boolean> {
    return await this.#store.get(lock(key)).then(v => v !== undefined, () => false)
  }

  get ttlMs (): number { return this.#ttlMs }
}
