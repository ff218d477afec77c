import { createRequire } from 'node:module'
import type { Redis, Cluster, RedisOptions, ClusterOptions } from 'ioredis'
import { batchLua, ScriptBatches, slotGroup } from './script-batches.ts'
import type { OwnedStore, SetOptions, StoreScript, StoreSnapshot, StoreValue } from './store.ts'

/** A Redis store's settings, durations in ms (from the `stores:` config). */
export interface RedisStoreSettings {
  /** One of: url (standalone), sentinels + name, cluster (seed nodes). */
  readonly url?: string
  readonly sentinels?: readonly string[]
  readonly name?: string
  readonly cluster?: readonly string[]
  readonly username?: string
  readonly password?: string
  readonly tls?: boolean | { readonly ca?: string, readonly servername?: string, readonly rejectUnauthorized?: boolean }
  readonly db?: number
  readonly keyPrefix: string
  readonly connectTimeout: number
  readonly commandTimeout: number
}

/** What the registry learns from a Redis store: state changes, failed commands, command durations. */
export interface RedisStoreEvents {
  state (store: RedisStore, state: StoreSnapshot['state'], error: string | null): void
  failed (store: RedisStore): void
  command (store: RedisStore, seconds: number): void
}

type Client = Redis | Cluster

// ioredis costs about 0.1 s of CPU to load: loaded with the first Redis store, not by every gateway.
let loaded: typeof import('ioredis') | undefined
const ioredis = () => (loaded ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis'))
type ScriptCaller = (numKeys: number, ...keysAndArgs: Array<string | number>) => Promise<unknown>

const hostPort = (s: string) => {
  const i = s.lastIndexOf(':')
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(i + 1)) }
}

/**
 * Adds a key to a tag's set (KEYS[1]) and makes the set live as long as its longest-lived entry:
 * ARGV[2] ms, 0 for none. A new set gets the TTL (PEXPIRE GT alone would never set one: a key
 * without TTL counts as infinite); an existing one is only extended, or made persistent.
 */
const TAG_LUA = `local fresh = redis.call('EXISTS', KEYS[1]) == 0
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl == 0 then redis.call('PERSIST', KEYS[1])
elseif fresh then redis.call('PEXPIRE', KEYS[1], ttl)
else redis.call('PEXPIRE', KEYS[1], ttl, 'GT') end
return 1`

type TagCaller = (tagKey: string, fullKey: string, ttlMs: number) => Promise<unknown>

/**
 * Commands issued in one turn of the event loop (many concurrent requests' cache reads) go out in one write, and their replies come back in few reads: far fewer system
 * calls per request under load, each still its own command. Not on Cluster, where ioredis picks
 * a script call's slot from its first argument (the key count), not its first key.
 */
const AUTO_PIPELINING = { enableAutoPipelining: true } as const

// Reconnect with backoff: 100 ms doubling, at most 2 s between attempts, forever.
const backoff = (times: number) => Math.min(100 * 2 ** Math.min(times - 1, 5), 2_000)

/**
 * A store on Redis (standalone, Sentinel or Cluster) through ioredis. Fails fast by design: no
 * offline queue (a command while disconnected fails at once), no resend after a reconnect, every
 * command bounded by commandTimeout. Reconnects on its own, forever, with backoff.
 */
export class RedisStore implements OwnedStore {
  readonly name: string
  readonly type = 'redis' as const
  readonly cluster: boolean
  readonly #client: Client
  readonly #prefix: string
  readonly #events: RedisStoreEvents
  readonly #scripts = new Map<string, { lua: string, calls: ScriptBatches }>()
  #state: StoreSnapshot['state'] = 'connecting'
  #since = new Date().toISOString()
  #lastError: string | null = null
  #closed = false
  readonly #settled: Promise<void>

  constructor (name: string, s: RedisStoreSettings, events: RedisStoreEvents) {
    this.name = name
    this.#prefix = s.keyPrefix
    this.cluster = s.cluster !== undefined
    this.#events = events
    const tls = s.tls === true ? {} : s.tls === false || s.tls === undefined ? undefined : { ...s.tls }
    const options: RedisOptions = {
      username: s.username,
      password: s.password,
      db: s.db,
      tls,
      connectTimeout: s.connectTimeout,
      commandTimeout: s.commandTimeout,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: backoff,
      // Sentinel: follow the primary through a failover; a READONLY reply means it moved.
      reconnectOnError: err => err.message.startsWith('READONLY')
    }
    if (s.cluster !== undefined) {
      const clusterOptions: ClusterOptions = { redisOptions: { ...options, db: undefined }, enableOfflineQueue: false, clusterRetryStrategy: backoff, slotsRefreshTimeout: s.connectTimeout }
      this.#client = new (ioredis().Cluster)(s.cluster.map(hostPort), clusterOptions)
    } else if (s.sentinels !== undefined) {
      this.#client = new (ioredis().Redis)({ ...options, ...AUTO_PIPELINING, sentinels: s.sentinels.map(hostPort), name: s.name, sentinelRetryStrategy: backoff })
    } else {
      this.#client = new (ioredis().Redis)(s.url ?? 'redis://127.0.0.1:6379', { ...options, ...AUTO_PIPELINING })
    }
    this.#client.defineCommand('pcTag', { numberOfKeys: 1, lua: TAG_LUA })
    this.#settled = new Promise(resolve => {
      this.#client.once('ready', resolve).once('error', resolve)
      setTimeout(resolve, s.connectTimeout).unref()
    })
    this.#client.on('ready', () => this.#set('up', null))
    this.#client.on('error', (err: Error) => { this.#lastError = err.message; if (this.#state === 'connecting') this.#set('down', err.message) })
    // A server killed outright may close the connection with no error event: say so rather than null.
    this.#client.on('close', () => { if (!this.#closed) this.#set('down', this.#lastError ??= 'connection closed') })
  }

  get (key: string): Promise<Buffer | undefined> {
    return this.#timed(async c => (await c.getBuffer(this.#prefix + key)) ?? undefined)
  }

  set (key: string, value: StoreValue, options?: SetOptions): Promise<void> {
    const full = this.#prefix + key
    const ttl = options?.ttlMs ?? 0
    const tags = options?.tags ?? []
    return this.#timed(async c => {
      const write = (k: string, v: StoreValue) => ttl > 0 ? c.set(k, v, 'PX', ttl) : c.set(k, v)
      if (tags.length === 0) { await Promise.all([write(full, value), c.del(this.#tagsOf(full))]); return }
      const tag = (c as unknown as { pcTag: TagCaller }).pcTag.bind(c)
      await Promise.all([write(full, value), write(this.#tagsOf(full), JSON.stringify(tags)), ...tags.map(t => tag(this.#tagKey(t), full, ttl))])
    })
  }

  delete (...keys: string[]): Promise<number> {
    return this.#timed(c => this.#del(c, keys.map(k => this.#prefix + k)))
  }

  deletePrefix (prefix: string): Promise<number> {
    const match = (this.#prefix + prefix).replace(/[*?[\]\\]/g, '\\$&') + '*'
    return this.#timed(async c => {
      const nodes = c instanceof ioredis().Cluster ? c.nodes('master') : [c]
      let n = 0
      for (const node of nodes) {
        for await (const batch of node.scanStream({ match, count: 500 }) as AsyncIterable<string[]>) {
          n += await this.#del(c, batch.filter(k => !k.startsWith(this.#tagSets)))
        }
      }
      return n
    })
  }

  /** Deletes the keys in the tag's set that still carry the tag (not those re-set without it since). */
  deleteTag (tag: string): Promise<number> {
    const tagKey = this.#tagKey(tag)
    return this.#timed(async c => {
      const keys = await c.smembers(tagKey)
      const tagsOf = await Promise.all(keys.map(k => c.get(this.#tagsOf(k))))
      const n = await this.#del(c, keys.filter((_, i) => (JSON.parse(tagsOf[i] ?? '[]') as string[]).includes(tag)))
      await c.del(tagKey)
      return n
    })
  }

  run<R> (script: StoreScript<R>, keys: readonly string[], args: readonly (string | number)[]): Promise<R> {
    let batches = this.#scripts.get(script.name)
    if (batches === undefined) {
      batches = this.#batchesOf(script)
      this.#scripts.set(script.name, batches)
    } else if (batches.lua !== script.lua) {
      return Promise.reject(new Error(`two different scripts are named "${script.name}"`))
    }
    const full = keys.map(k => this.#prefix + k)
    const calls = batches.calls
    return this.#timed(() => calls.call(full, args) as Promise<R>)
  }

  #batchesOf (script: StoreScript): { lua: string, calls: ScriptBatches } {
    // ioredis keeps the SHA, sends EVALSHA and falls back to EVAL on NOSCRIPT (a restarted or new server).
    this.#client.defineCommand(script.name, { lua: batchLua(script.lua) })
    // A batch is already one command per turn: auto-pipelining would only hold it for another turn.
    ;(this.#client.options.autoPipeliningIgnoredCommands ??= []).push(script.name)
    const call = (this.#client as unknown as Record<string, ScriptCaller>)[script.name] as ScriptCaller
    const send = (keys: string[], args: Array<string | number>) => call.call(this.#client, keys.length, ...keys, ...args)
    return { lua: script.lua, calls: new ScriptBatches(send, this.#client instanceof ioredis().Cluster ? slotGroup : () => '') }
  }

  settled (): Promise<void> { return this.#settled }

  snapshot (): StoreSnapshot {
    return { name: this.name, type: 'redis', state: this.#state, since: this.#since, lastError: this.#lastError }
  }

  async close (): Promise<void> {
    this.#closed = true
    await this.#client.quit().catch(() => this.#client.disconnect())
  }

  /** Where tag sets and tag records live: reserved, so deletePrefix leaves them to deleteTag. */
  get #tagSets (): string { return `${this.#prefix}tag:{` }

  #tagKey (tag: string): string { return `${this.#tagSets}${tag.replace(/[{}]/g, '_')}}` }

  /** The tags a key was last set with (JSON), expiring with it; absent when set without tags. */
  #tagsOf (fullKey: string): string { return `${this.#tagSets}}${fullKey}` }

  /** DEL one key per command (keys of one call may live in different cluster slots), with its tag record. */
  async #del (c: Client, fullKeys: readonly string[]): Promise<number> {
    const counts = await Promise.all(fullKeys.map(async k => (await Promise.all([c.del(k), c.del(this.#tagsOf(k))]))[0]))
    return counts.reduce((a, b) => a + b, 0)
  }

  /** Runs a command, bounded by commandTimeout (ioredis), timed and counted: no async frame of its own on the hot path. */
  #timed<T> (command: (c: Client) => Promise<T>): Promise<T> {
    const started = performance.now()
    let sent: Promise<T>
    try {
      sent = command(this.#client)
    } catch (err) {
      sent = Promise.reject(err as Error)
    }
    return sent.then(value => {
      this.#events.command(this, (performance.now() - started) / 1000)
      return value
    }, (err: unknown) => {
      // While disconnected, the connection's error says more than "stream isn't writeable".
      if (this.#state === 'up') this.#lastError = (err as Error).message
      this.#events.failed(this)
      this.#events.command(this, (performance.now() - started) / 1000)
      throw err
    })
  }


  #set (state: StoreSnapshot['state'], error: string | null): void {
    if (state === this.#state) return
    this.#state = state
    this.#since = new Date().toISOString()
    this.#events.state(this, state, error)
  }
}
