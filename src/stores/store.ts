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

/**
 * What a memory script sees: the store's entries, by the keys given to run(), read and written
 * synchronously. (On Redis, KEYS hold them with the store's keyPrefix in front.)
 */
export interface LocalData {
  get (key: string): LocalValue | undefined
  /**
   * `ttlMs` absent: the key keeps its time to live (as INCR or SET KEEPTTL on Redis); 0: no expiry;
   * otherwise as SetOptions.ttlMs. The key keeps its tags either way, as on Redis (a script's write
   * leaves the tag records alone). An object updated in place keeps its expiry without a set.
   */
  set (key: string, value: LocalValue, ttlMs?: number): void
  delete (key: string): void
}

/**
 * An atomic server-side operation: Lua on Redis (loaded once, run with EVALSHA, reloaded after a
 * NOSCRIPT), and the same logic in JavaScript on the memory store. Both must return the same shape:
 * Redis turns Lua numbers into integers and tables into arrays, so return integers, strings and arrays;
 * a Lua nil or false, and a `local` returning undefined or null, give undefined on both (inside an
 * array they differ: Redis ends the array there). KEYS are keys to use, not values to return: on
 * Redis they carry the store's keyPrefix, on the memory store they do not.
 * On Redis Cluster (`cluster`), keys given to one call must share a hash tag (`rl:{consumer-7}:burst`, see hashTag()).
 */
export interface StoreScript<R = unknown> {
  /** Unique per script text (lower-case letters, digits, dashes): a second script of the same name is refused by both stores. */
  readonly name: string
  /** KEYS[1..n] and ARGV[1..m] as in EVAL; `redis.call('TIME')` gives the server's clock. */
  readonly lua: string
  /** The memory store's version: runs synchronously, so it is atomic too. `nowMs` is Date.now(). */
  readonly local: (data: LocalData, keys: readonly string[], args: readonly string[], nowMs: number) => R
}

export interface SetOptions {
  /**
   * Time to live in ms, rounded up to a whole ms (0.4 → 1), at most Number.MAX_SAFE_INTEGER (285,000
   * years: a larger one gets that, never no expiry); absent, 0, NaN or Infinity: kept until evicted or
   * deleted (see ttlOf()). Negative: expired already, so the key is deleted (see expiredTtl()),
   * extendOnly or not, never kept for ever.
   */
  readonly ttlMs?: number
  /** Tags to delete the entry by later (deleteTag), e.g. surrogate keys of a cached response. */
  readonly tags?: readonly string[]
  /**
   * The TTL only extends: a key that exists with a later expiry keeps it (its tags get that one
   * too). For a key that must outlive each of several writes (a Vary marker and its variants). A key
   * without expiry gets this TTL, unlike with PEXPIRE GT: it would otherwise be kept for ever.
   */
  readonly extendOnly?: boolean
}

export interface Store {
  /** The name under `stores:` (`memory` is always there). */
  readonly name: string
  readonly type: 'memory' | 'redis'
  /** true on Redis Cluster: the keys of one script call must share a hash tag (one slot). Elsewhere any keys may go together. */
  readonly cluster?: boolean
  /** Redis stores: ms after which a call fails (`commandTimeout`), though the server may still run it later. */
  readonly commandTimeout?: number
  /**
   * Redis stores: where the keys live (server, database, keyPrefix; see redisKeySpace). Another store
   * object of the same key space (a reload that changed only a timeout or a password) holds the same
   * keys. A memory store has none: another object is another, empty store.
   */
  readonly keySpace?: string
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
  /** Runs a script atomically; resolves with what it returned. Fails with a StoreError (`code`). */
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
  /** Redis Cluster stores: the nodes unreachable (calls for their keys fail), with their connection's last error. */
  readonly nodesDown?: ReadonlyArray<{ readonly node: string, readonly error: string }>
}

/** A Redis server's, or a sentinel's, refusal of a store's credentials (WRONGPASS, NOAUTH...): a config error, not an outage. */
export interface CredentialsRefused {
  /** The sentinel (host:port) that refused the sentinel credentials; absent: the store's server refused its own. */
  readonly sentinel?: string
  /** The server's reply, as it answered it. */
  readonly reply: string
}

/** A store the process owns: the API plus what the registry needs. */
export interface OwnedStore extends Store {
  snapshot (): StoreSnapshot
  /**
   * Resolves once the first connection attempt has ended, up or down (Redis stores): with the
   * refusal of the credentials it ended in, if it did.
   */
  settled? (): Promise<CredentialsRefused | undefined>
  close (): Promise<void>
}

/**
 * Why a store call failed, as `code` on the error it fails with (both stores); the error of the
 * client or script is its `cause`. STORE_UNAVAILABLE: the store did not answer (down, unreachable,
 * timed out, a failover under way): a retry later may succeed. STORE_SCRIPT_ERROR: run() was answered
 * with an error (the script's own, Redis refusing it such as CROSSSLOT, a second script of the same
 * name). STORE_ERROR: another call was answered with an error.
 */
export type StoreErrorCode = 'STORE_UNAVAILABLE' | 'STORE_SCRIPT_ERROR' | 'STORE_ERROR'

export class StoreError extends Error {
  readonly code: StoreErrorCode
  /**
   * Set on the failure of a deleteTag or deletePrefix: the keys it deleted before it failed. They
   * stay deleted; the same call again goes on with what is left.
   */
  deleted?: number

  constructor (code: StoreErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'StoreError'
    this.code = code
  }
}

/** `err` as a StoreError with `code` (a StoreError already is one). */
export function storeError (code: StoreErrorCode, err: unknown): StoreError {
  return err instanceof StoreError ? err : new StoreError(code, err instanceof Error ? err.message : String(err), err)
}

// A lone UTF-16 surrogate has no UTF-8: Redis would get U+FFFD for each, one entry for 'a\ud800' and 'a\udfff'.
// With the `u` flag, \p{Surrogate} matches lone ones only (a pair is one code point).
const LONE_SURROGATE = /\p{Surrogate}/gu
const escapeSurrogate = (s: string) => `\ufffd${s.charCodeAt(0).toString(16)}`
// String.prototype.isWellFormed (ES2024) is past this project's lib.
const wellFormed = (s: string): boolean => (s as string & { isWellFormed (): boolean }).isWellFormed()

/**
 * A key (or tag, or prefix) as both stores use it: itself when well-formed, else each lone surrogate
 * becomes U+FFFD and its code unit in lower-case hex (`a\ud800` → `a\ufffdd800`), so that distinct
 * keys stay distinct, and memory and Redis agree (see docs/stores.md).
 */
export const storeKey = (key: string): string => wellFormed(key) ? key : key.replace(LONE_SURROGATE, escapeSurrogate)

/** storeKey of each: the very array when every key is well-formed (one check per key on the request path). */
export function storeKeys (keys: readonly string[]): readonly string[] {
  for (const key of keys) if (!wellFormed(key)) return keys.map(storeKey)
  return keys
}

/** A TTL as both stores apply it (SetOptions.ttlMs): whole ms, rounded up, at most MAX_SAFE_INTEGER; 0 for no expiry. */
export function ttlOf (ttlMs: number | undefined): number {
  return ttlMs !== undefined && ttlMs > 0 && ttlMs < Infinity ? Math.min(Math.ceil(ttlMs), Number.MAX_SAFE_INTEGER) : 0
}

/** A set() whose TTL is negative: an expiry in the past (a stale answer's), the key deleted rather than written without one. */
export const expiredTtl = (ttlMs: number | undefined): boolean => ttlMs !== undefined && ttlMs < 0

/** Both stores refuse a second script under a known name (on Redis the name is the command it is loaded as). */
export const twoScriptsNamed = (name: string): StoreError =>
  new StoreError('STORE_SCRIPT_ERROR', `two different scripts are named "${name}"`)

/** Wraps `part` in a Redis Cluster hash tag so that keys built from it land in one slot. Braces inside are replaced. */
export const hashTag = (part: string): string => `{${part.replace(/[{}]/g, '_')}}`

const SCRIPT_NAME = /^[a-z][a-z0-9-]*$/

/** Declares a script (checks its name once, at load). */
export function defineScript<R> (script: StoreScript<R>): StoreScript<R> {
  if (!SCRIPT_NAME.test(script.name)) throw new TypeError(`script name "${script.name}" must be lower-case letters, digits and dashes`)
  return Object.freeze({ ...script })
}
