/**
 * The store API plugins use (rate-limit counters, cached responses). Memory and Redis stores
 * implement it with the same semantics; every call may fail (Redis down, command timeout), and
 * each plugin decides what a failure means for its requests.
 */

/** A value a store holds. Reads give Buffers back (what Redis returns), so both stores agree. */
export type StoreValue = Buffer | string

/**
 * What a memory script keeps under a key: a value, or an object of its own that it reads back as
 * the same object and may update in place (a counter: no parsing, no new string per request).
 * get() and getNow() give such an object as the Buffer of its toString().
 */
export type LocalValue = StoreValue | number | object

/** What a memory script sees: the store's entries, by full key, read and written synchronously. */
export interface LocalData {
  get (key: string): LocalValue | undefined
  /**
   * `ttlMs` absent: the key keeps its time to live and tags (as INCR or SET KEEPTTL on Redis);
   * 0: no expiry. An object updated in place keeps its expiry without a set.
   */
  set (key: string, value: LocalValue, ttlMs?: number): void
  delete (key: string): void
}

/**
 * An atomic server-side operation: Lua on Redis (loaded once, run with EVALSHA, reloaded after a
 * NOSCRIPT), and the same logic in JavaScript on the memory store. Both must return the same shape:
 * Redis turns Lua numbers into integers and tables into arrays, so return integers, strings and arrays.
 * On Redis Cluster (`cluster`), keys given to one call must share a hash tag (`rl:{consumer-7}:burst`, see hashTag()).
 */
export interface StoreScript<R = unknown> {
  /** Unique per script text (lower-case letters, digits, dashes). */
  readonly name: string
  /** KEYS[1..n] and ARGV[1..m] as in EVAL; `redis.call('TIME')` gives the server's clock. */
  readonly lua: string
  /** The memory store's version: runs synchronously, so it is atomic too. `nowMs` is Date.now(). */
  readonly local: (data: LocalData, keys: readonly string[], args: readonly string[], nowMs: number) => R
}

export interface SetOptions {
  /** Time to live in ms; absent or 0: kept until evicted or deleted. */
  readonly ttlMs?: number
  /** Tags to delete the entry by later (deleteTag), e.g. surrogate keys of a cached response. */
  readonly tags?: readonly string[]
}

export interface Store {
  /** The name under `stores:` (`memory` is always there). */
  readonly name: string
  readonly type: 'memory' | 'redis'
  /** true on Redis Cluster: the keys of one script call must share a hash tag (one slot). Elsewhere any keys may go together. */
  readonly cluster?: boolean
  get (key: string): Promise<Buffer | undefined>
  /**
   * The same read without a promise, on stores in this process's memory (absent on Redis): for a
   * hot path that can then stay synchronous (a cache hit). Same value and recency effect as get().
   */
  readonly getNow?: (key: string) => Buffer | undefined
  set (key: string, value: StoreValue, options?: SetOptions): Promise<void>
  /** Deletes keys; resolves with how many existed. */
  delete (...keys: string[]): Promise<number>
  /** Deletes every key starting with `prefix` (on Redis a SCAN of every primary: for purges, not for requests). */
  deletePrefix (prefix: string): Promise<number>
  /** Deletes every key set with `tag`. */
  deleteTag (tag: string): Promise<number>
  /** Runs a script atomically; resolves with what it returned. */
  run<R> (script: StoreScript<R>, keys: readonly string[], args: readonly (string | number)[]): Promise<R>
  /**
   * Memory stores only: the same, synchronously (`args` already strings, as scripts see them), so
   * that a plugin's hook on a memory store can stay synchronous, off the pipeline's promise path.
   */
  runNow?<R> (script: StoreScript<R>, keys: readonly string[], args: readonly string[]): R
}

/** What GET /stores shows of a store. */
export interface StoreSnapshot {
  readonly name: string
  readonly type: 'memory' | 'redis'
  readonly state: 'up' | 'connecting' | 'down'
  /** Since when the store is in this state (ISO time). */
  readonly since: string
  readonly lastError: string | null
  /** Entries and bytes held (memory stores). */
  readonly entries?: number
  readonly bytes?: number
  /** Tags indexed for deleteTag (memory stores): drops with the entries they name. */
  readonly tags?: number
}

/** A store the process owns: the API plus what the registry needs. */
export interface OwnedStore extends Store {
  snapshot (): StoreSnapshot
  /** Resolves once the first connection attempt has ended, up or down (Redis stores). */
  settled? (): Promise<void>
  close (): Promise<void>
}

/** Wraps `part` in a Redis Cluster hash tag so that keys built from it land in one slot. Braces inside are replaced. */
export const hashTag = (part: string): string => `{${part.replace(/[{}]/g, '_')}}`

const SCRIPT_NAME = /^[a-z][a-z0-9-]*$/

/** Declares a script (checks its name once, at load). */
export function defineScript<R> (script: StoreScript<R>): StoreScript<R> {
  if (!SCRIPT_NAME.test(script.name)) throw new TypeError(`script name "${script.name}" must be lower-case letters, digits and dashes`)
  return Object.freeze({ ...script })
}
