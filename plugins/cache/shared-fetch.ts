import { defineScript, type Store } from '../../src/index.ts'

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

const SUFFIX = '#fetch'

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
    const lock = key + SUFFIX
    const taken = await this.#store.run(TAKE, [lock], [token, this.#ttlMs]).catch(() => 1)
    if (taken !== 1) return undefined
    let given = false
    return () => {
      if (given) return
      given = true
      this.#store.run(GIVE, [lock], [token]).catch(() => 0)
    }
  }

  /** Whether another instance still holds the fetch of `key` (false when the store fails). */
  async held (key: string): Promise<boolean> {
    return await this.#store.get(key + SUFFIX).then(v => v !== undefined, () => false)
  }

  get ttlMs (): number { return this.#ttlMs }
}
