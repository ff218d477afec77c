import { LRUCache } from 'lru-cache'
import { expiredTtl, storeError, storeKey, storeKeys, ttlOf, twoScriptsNamed, type LocalData, type LocalValue, type OwnedStore, type SetOptions, type StoreScript, type StoreSnapshot, type StoreValue } from './store.ts'

export interface MemoryStoreSettings {
  /** Most entries held; the least recently used go first. */
  readonly maxEntries: number
  /** Most bytes held (values, keys and tags, roughly). */
  readonly maxBytes: number
}

export const MEMORY_DEFAULTS: MemoryStoreSettings = { maxEntries: 100_000, maxBytes: 64 * 1024 * 1024 }

/** The two parts of a memory store: what plugins `set` (cached responses), and keys scripts create (rate-limit counters). */
export type MemoryPart = 'values' | 'scripted'

export const MEMORY_PARTS: readonly MemoryPart[] = ['values', 'scripted']

type Entry = LocalValue

// Per-entry bookkeeping of lru-cache and the Map, counted so that many small entries cannot exceed maxBytes unseen.
const OVERHEAD = 64

// A script's own object (a rate-limit counter) is a few numbers.
const OBJECT_SIZE = 32

// Per tag of an entry, besides its characters: its string's header, its slot in the entry's list
// and in the tag index (a Map entry for a tag of one entry, a share of a Set for one of several).
// Measured (Node 20): 40 to 140 bytes a tag, by how many entries share it and how full the
// index's hash tables are. Counted in the entry's size, so that entries with many tags (a
// Surrogate-Key can list hundreds) stay within maxBytes: 1500 sets of 600 tags each into 4 MiB
// leave 3.3 MB of heap, 206 MB when tags were not counted.
const TAG_OVERHEAD = 128

/** Keys of a shared tag checked for expiry per key added to it (see #prune). */
const PRUNED_PER_ADD = 2

const sizeOf = (value: Entry, key: string): number =>
  OVERHEAD + key.length + (typeof value === 'number' ? 8 : typeof value === 'string' ? Buffer.byteLength(value) : Buffer.isBuffer(value) ? value.length : OBJECT_SIZE)

/**
 * A key as the store keeps it, flattened. Built by concatenation (`rl:{ip=10.0.0.1}:n:s60000`), a
 * string is a tree of its pieces (a request's address among them) until something reads it whole:
 * kept so, a rate-limit counter took 260 to 320 bytes of heap, flattened 135 to 165 (measured,
 * Node 20, 34-character keys). Number() reads it whole (V8 flattens a string in place to parse
 * it); its result is kept in `parsed`, or the optimizing compiler drops the parse.
 */
const parsed = { last: 0 }
function flat (key: string): string {
  parsed.last = Number(key)
  return key
}

function tagsSize (tags: readonly string[]): number {
  let n = 0
  for (const t of tags) n += TAG_OVERHEAD + t.length
  return n
}

/**
 * A store in this process's memory, bounded in entries and bytes. Expired entries are dropped
 * when met (lru-cache's lazy expiry): no timer per key. Everything is synchronous underneath, so a
 * script runs atomically.
 *
 * Keys a script creates (rate-limit counters, locks) live in an LRU of their own, with the same
 * bounds: on one shared LRU, a client could reset its rate limit by filling the cache with large
 * answers (Kong keeps them in separate shared dicts for the same reason). A key is in one part
 * only: set() moves it to the values, and a script's write leaves it where it is.
 */
export class MemoryStore implements OwnedStore {
  readonly name: string
  readonly type = 'memory' as const
  readonly #settings: MemoryStoreSettings
  /** Made on first use: lru-cache allocates its arrays for maxEntries up front (about 50 bytes each, 65 with expiries: 5 to 6.5 MB for the default), and many stores are never used. */
  #made: LRUCache<string, Entry> | undefined
  /** Keys scripts created, made on first use too. */
  #madeScripted: LRUCache<string, Entry> | undefined
  /**
   * Tag → keys (the key itself while it is the tag's only one: most tags, a URL's among them, name
   * one entry, and a Set each would cost more than the entry's TAG_OVERHEAD), and key → tags, for
   * deleteTag; kept in step with evictions.
   */
  readonly #tagged = new Map<string, string | Set<string>>()
  readonly #tagsOf = new Map<string, readonly string[]>()
  /** Each script's text by name: a second script of a known name is refused, as on Redis. */
  readonly #scripts = new Map<string, string>()
  readonly #since = new Date().toISOString()
  readonly #evicted: ((part: MemoryPart) => void) | undefined

  /** `evicted`: called for each entry dropped for room before it expired (a metric). */
  constructor (name: string, settings: MemoryStoreSettings = MEMORY_DEFAULTS, evicted?: (part: MemoryPart) => void) {
    this.name = name
    this.#settings = settings
    this.#evicted = evicted
  }

  #newLru (part: MemoryPart, untag: boolean): LRUCache<string, Entry> {
    const evicted = this.#evicted
    const lru: LRUCache<string, Entry> = new LRUCache<string, Entry>({
      max: this.#settings.maxEntries,
      maxSize: this.#settings.maxBytes,
      sizeCalculation: sizeOf,
      // A clock read per expiry check (50 ns) instead of lru-cache's clock kept for 1 ms by a timer:
      // in a busy server that is a timer set and fired every millisecond, about 0.4 µs a request.
      ttlResolution: 0,
      ...(!untag && evicted === undefined
        ? {}
        : {
            dispose: (_v: Entry, key: string, reason: LRUCache.DisposeReason) => {
              if (untag) this.#untag(key)
              // Still in the cache while disposed: an expired entry evicted was gone anyway, and is not counted.
              if (reason === 'evict' && evicted !== undefined && lru.getRemainingTTL(key) > 0) evicted(part)
            }
          })
    })
    return lru
  }

  get #lru (): LRUCache<string, Entry> {
    return (this.#made ??= this.#newLru('values', true))
  }

  get #scripted (): LRUCache<string, Entry> {
    return (this.#madeScripted ??= this.#newLru('scripted', false))
  }

  /** Either part's value (a key is in one only). */
  #read (key: string): Entry | undefined {
    return this.#made?.get(key) ?? this.#madeScripted?.get(key)
  }

  async get (key: string): Promise<Buffer | undefined> {
    return this.getNow(key)
  }

  readonly getNow = (key: string): Buffer | undefined => {
    const v = this.#read(storeKey(key))
    return v === undefined ? undefined : Buffer.isBuffer(v) ? v : Buffer.from(String(v))
  }

  async set (key: string, value: StoreValue, options?: SetOptions): Promise<void> {
    const k = storeKey(key)
    if (expiredTtl(options?.ttlMs)) { this.#remove(k); return }
    const ttlMs = options?.extendOnly === true ? this.#extended(k, options.ttlMs) : options?.ttlMs
    this.#madeScripted?.delete(k)
    const tags = options?.tags === undefined ? undefined : storeKeys(options.tags)
    this.#put(k, value, { ttlMs, tags })
  }

  /** `ttlMs`, or the time `key` has left when later: see SetOptions.extendOnly. */
  #extended (key: string, ttlMs: number | undefined): number {
    const ttl = ttlOf(ttlMs)
    if (ttl === 0) return 0
    // 0 when absent, negative when expired, Infinity without a TTL (which gets this one).
    const left = Math.max(this.#made?.getRemainingTTL(key) ?? 0, this.#madeScripted?.getRemainingTTL(key) ?? 0)
    return left === Infinity ? ttl : Math.max(ttl, left)
  }

  async delete (...keys: string[]): Promise<number> {
    let n = 0
    for (const k of keys) if (this.#remove(storeKey(k))) n++
    return n
  }

  #remove (key: string): boolean {
    const scripted = this.#madeScripted?.delete(key) === true
    return this.#made?.delete(key) === true || scripted
  }

  async deletePrefix (prefix: string): Promise<number> {
    prefix = storeKey(prefix)
    const keys = [...(this.#made?.keys() ?? []), ...(this.#madeScripted?.keys() ?? [])].filter(k => k.startsWith(prefix))
    for (const k of keys) this.#remove(k)
    return keys.length
  }

  async deleteTag (tag: string): Promise<number> {
    const tagged = this.#tagged.get(storeKey(tag))
    const keys = tagged === undefined ? [] : typeof tagged === 'string' ? [tagged] : [...tagged]
    let n = 0
    for (const k of keys) if (this.#lru.delete(k)) n++
    return n
  }

  async run<R> (script: StoreScript<R>, keys: readonly string[], args: readonly (string | number)[]): Promise<R> {
    return this.runNow(script, keys, args.map(String))
  }

  runNow<R> (script: StoreScript<R>, keys: readonly string[], args: readonly string[]): R {
    const lua = this.#scripts.get(script.name)
    if (lua === undefined) this.#scripts.set(script.name, script.lua)
    else if (lua !== script.lua) throw twoScriptsNamed(script.name)
    let r: R
    try {
      r = script.local(this.#local, storeKeys(keys), args, Date.now())
    } catch (err) {
      throw storeError('STORE_SCRIPT_ERROR', err)
    }
    // A Lua nil comes back from Redis as undefined too.
    return (r === null ? undefined : r) as R
  }

  snapshot (): StoreSnapshot {
    const entries = (this.#made?.size ?? 0) + (this.#madeScripted?.size ?? 0)
    const bytes = (this.#made?.calculatedSize ?? 0) + (this.#madeScripted?.calculatedSize ?? 0)
    return { name: this.name, type: 'memory', state: 'up', since: this.#since, lastError: null, entries, bytes, tags: this.#tagged.size }
  }

  async close (): Promise<void> {
    this.#made?.clear()
    this.#madeScripted?.clear()
  }

  /** The synchronous view scripts get (get/set/delete without promises). */
  readonly #local: LocalData = {
    get: key => this.#read(key),
    set: (key, value, ttlMs) => {
      // Its tags kept, TTL too unless given (as INCR does on Redis; Infinity, none, is ttlOf's 0).
      if (this.#made?.has(key) === true) this.#put(key, value, { ttlMs: ttlMs ?? this.#made.getRemainingTTL(key), tags: this.#tagsOf.get(key) })
      else this.#setScripted(key, value, ttlMs)
    },
    delete: key => { this.#remove(key) }
  }

  /** A script's write to a key it created: its TTL kept unless it gives one (as INCR does on Redis). */
  #setScripted (key: string, value: Entry, ttlMs: number | undefined): void {
    const lru = this.#scripted
    const ttl = ttlOf(ttlMs ?? lru.getRemainingTTL(key))
    lru.set(flat(key), value, ttl > 0 ? { ttl } : undefined)
  }

  #put (key: string, value: Entry, options: SetOptions | undefined): void {
    const ttl = ttlOf(options?.ttlMs)
    const tags = options?.tags ?? []
    // Replaced whole, its old tags going with it (dispose): lru-cache keeps the size of a key set
    // again to the same value, and the tags, counted in it, may differ.
    this.#made?.delete(key)
    const size = sizeOf(value, key) + tagsSize(tags)
    this.#lru.set(flat(key), value, ttl > 0 ? { ttl, size } : { size })
    if (tags.length === 0 || !this.#lru.has(key)) return
    this.#tagsOf.set(key, tags)
    for (const t of tags) {
      const keys = this.#tagged.get(t)
      if (keys === undefined) this.#tagged.set(t, key)
      else if (typeof keys !== 'string') { keys.add(key); this.#prune(keys) }
      else if (keys !== key) this.#tagged.set(t, new Set([keys, key]))
    }
  }

  /**
   * Drops the expired entries among a tag's oldest keys, and moves the live ones to the back: a tag
   * that many short-lived entries share (a path under many queries) names its live entries, not
   * every one it ever had until evicted. A few per key added, so all are seen in turn.
   */
  #prune (keys: Set<string>): void {
    const lru = this.#lru
    for (let i = 0; i < PRUNED_PER_ADD && keys.size > 1; i++) {
      const k = keys.values().next().value as string
      if (lru.getRemainingTTL(k) > 0) {
        keys.delete(k)
        keys.add(k)
      } else {
        // Leaves its tags with it (dispose): this one's set then holds one key fewer, or is its last key (#untag).
        lru.delete(k)
      }
    }
  }

  #untag (key: string): void {
    const tags = this.#tagsOf.get(key)
    if (tags === undefined) return
    this.#tagsOf.delete(key)
    for (const t of tags) {
      const keys = this.#tagged.get(t)
      if (keys === key) this.#tagged.delete(t)
      else if (typeof keys === 'object' && keys.delete(key) && keys.size === 1) this.#tagged.set(t, keys.values().next().value as string)
    }
  }
}
