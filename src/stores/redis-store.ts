import { createRequire } from 'node:module'
import { Deadlines } from '../deadlines.ts'
import type { Redis, Cluster, Command, RedisOptions, ClusterOptions } from 'ioredis'
import { redisKeySpace } from './key-space.ts'
import { batchLua, ScriptBatches } from './script-batches.ts'
import { expiredTtl, StoreError, storeError, storeKey, storeKeys, ttlOf, twoScriptsNamed, type CredentialsRefused, type OwnedStore, type SetOptions, type StoreErrorCode, type StoreScript, type StoreSnapshot, type StoreValue } from './store.ts'

/** A Redis store's settings, durations in ms (from the `stores:` config). */
export interface RedisStoreSettings {
  /** One of: url (standalone), sentinels + name, cluster (seed nodes). */
  readonly url?: string
  readonly sentinels?: readonly string[]
  readonly name?: string
  readonly cluster?: readonly string[]
  readonly username?: string
  readonly password?: string
  /** Sentinel: the sentinels' own credentials (username and password are the primary's). */
  readonly sentinelUsername?: string
  readonly sentinelPassword?: string
  /** Every connection of the store: with Sentinel, the sentinels' and the primary's. */
  readonly tls?: boolean | { readonly ca?: string, readonly servername?: string, readonly rejectUnauthorized?: boolean }
  readonly db?: number
  readonly keyPrefix: string
  readonly connectTimeout: number
  readonly commandTimeout: number
}

/** What a store's config leaves out: its settings are these (db not with cluster). */
export const REDIS_DEFAULTS = { keyPrefix: 'pc:', connectTimeout: 2_000, commandTimeout: 100, db: 0 } as const

/** What the registry learns from a Redis store: state changes, failed commands, command durations. */
export interface RedisStoreEvents {
  state (store: RedisStore, state: StoreSnapshot['state'], error: string | null): void
  failed (store: RedisStore): void
  command (store: RedisStore, seconds: number): void
  /** A standalone server answered READONLY (a replica): once, and again after REPLICA_NOTICE_MS without one. */
  replica? (store: RedisStore): void
  /** Cluster: a node became unreachable (`error`), or is back (null): once per change (see #watchNodes). */
  node? (store: RedisStore, node: string, error: string | null): void
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
 * Adds a key (ARGV[1]) to a tag's set (KEYS[1]), and to the tag's expiry index (KEYS[2], same hash
 * tag: same slot), scored by when the key's TTL (ARGV[2] ms, 0 for none) runs out by the server's
 * clock. Members whose time is past leave both, PRUNED_PER_ADD at most per call: the set holds
 * the tag's live keys, not every key ever tagged (a path under many queries), which the set's TTL,
 * renewed by each add, would otherwise keep. Both live as long as their longest-lived entry: a new
 * one gets the TTL (PEXPIRE GT alone would never set one: a key without TTL counts as infinite); an
 * existing one is only extended, or made persistent.
 */
const PRUNED_PER_ADD = 10
const TAG_LUA = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local fresh = { redis.call('EXISTS', KEYS[1]) == 0, redis.call('EXISTS', KEYS[2]) == 0 }
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ttl == 0 and '+inf' or string.format('%d', now + ttl), ARGV[1])
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, ${PRUNED_PER_ADD})
if #gone > 0 then
  redis.call('SREM', KEYS[1], unpack(gone))
  redis.call('ZREM', KEYS[2], unpack(gone))
end
for i, key in ipairs(KEYS) do
  if ttl == 0 then redis.call('PERSIST', key)
  elseif fresh[i] then redis.call('PEXPIRE', key, ttl)
  else redis.call('PEXPIRE', key, ttl, 'GT') end
end
return 1`

type TagCaller = (tagKey: string, expiryKey: string, fullKey: string, ttlMs: number) => Promise<unknown>

/**
 * Moves a tag's set (KEYS[1]) into its purge set (KEYS[2], same hash tag: same slot), whose members
 * deleteTag then deletes a batch at a time. Entries set with the tag while a purge deletes these go
 * to a new tag set, which the purge leaves alone; members a failed purge left are taken by the next
 * one. The purge set lives as long as the longer-lived of the two (PTTL -1: no expiry). Only
 * commands Redis runs under maxmemory (RENAME, SMOVE, PERSIST, PEXPIRE; not SUNIONSTORE): a purge
 * frees memory, it must work when the server refuses writes that would take more.
 */
const TAKE_TAG_LUA = `local kept, taken = redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[1])
if taken == -2 then return 1 end
if kept == -2 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 1
end
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('SMOVE', KEYS[1], KEYS[2], member) end
if taken == -1 then redis.call('PERSIST', KEYS[2])
elseif kept ~= -1 then redis.call('PEXPIRE', KEYS[2], math.max(kept, taken)) end
return 1`

type TakeTagCaller = (tagKey: string, purgeKey: string) => Promise<unknown>

/**
 * A purge's batch done: its members (ARGV) leave the purge set (KEYS[1]), and the tag's expiry
 * index (KEYS[3]) unless set with the tag again since (in the tag's set, KEYS[2]). Deletions only,
 * allowed under maxmemory.
 */
const PURGED_LUA = `redis.call('SREM', KEYS[1], unpack(ARGV))
for _, member in ipairs(ARGV) do
  if redis.call('SISMEMBER', KEYS[2], member) == 0 then redis.call('ZREM', KEYS[3], member) end
end
return 1`

type PurgedCaller = (purgeKey: string, tagKey: string, expiryKey: string, ...members: string[]) => Promise<unknown>

/** Members of a purge set deleted per batch: a set of any size goes a few hundred commands at a time. */
const PURGE_BATCH = 200

/**
 * Sets a key (KEYS[1]) to ARGV[1] with a TTL that only extends (SetOptions.extendOnly): ARGV[2] ms
 * (0 for none), or the key's own when it has more left. Returns the TTL set, 0 for none.
 */
const SET_EXTENDED_LUA = `local left, ttl = redis.call('PTTL', KEYS[1]), tonumber(ARGV[2])
if ttl == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
  return 0
end
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return ttl`

type SetExtendedCaller = (key: string, value: StoreValue, ttlMs: number) => Promise<number>

/**
 * Commands issued in one turn of the event loop (many concurrent requests' cache reads) go out in one write, and their replies come back in few reads: far fewer system
 * calls per request under load, each still its own command. Not on Cluster, where ioredis picks
 * a script call's slot from its first argument (the key count), not its first key.
 */
const AUTO_PIPELINING = { enableAutoPipelining: true } as const

// Reconnect with backoff: 100 ms doubling, at most 2 s between attempts, forever.
const backoff = (times: number) => Math.min(100 * 2 ** Math.min(times - 1, 5), 2_000)

/**
 * Calls failing in a row, no call answered in between, at least this many over at least this long:
 * the store is down though still connected (a frozen server, a Cluster in cluster_state:fail). Not
 * one slow burst: a blip of timeouts at one instant is not an outage.
 */
const STALL_CALLS = 3
const STALL_MS = 1_000

/**
 * The store's own reconnects to the same server (a stalled connection, a standalone server answering
 * READONLY) at most this often: not in a loop while the server stays frozen or a replica.
 */
const RECONNECT_EVERY_MS = 5_000
/** How long an idle-up (see #upIfIdle) waits at most, doubling from RECONNECT_EVERY_MS each time it proved wrong. */
const MAX_IDLE_UP_MS = 60_000

/** A replica is reported again only after this long without a READONLY reply: once, not per write. */
const REPLICA_NOTICE_MS = 60_000

/**
 * Error replies that mean the server cannot serve now, and will later: a failover or migration, a
 * load, another client's long script (BUSY), writes refused after a failed save (MISCONF) or for
 * want of replicas (NOREPLICAS). Any other reply error is an answer (a script's or a caller's error;
 * OOM too: a full server is no outage, its reads and deletions go on).
 */
const UNAVAILABLE = /^(READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|LOADING|BUSY|MISCONF|NOREPLICAS) /

/**
 * Replies refusing a connection's credentials: a wrong password or username, or a disabled user
 * (WRONGPASS; `ERR invalid password` before Redis 6), none given where the server requires them
 * (NOAUTH). Every reconnect gets the same answer. Not a password given to a server that requires
 * none, nor a user denied the ready check's INFO (NOPERM): ioredis goes on, the store comes up.
 */
const REFUSAL = '(?:WRONGPASS|NOAUTH) |ERR invalid password'
const REFUSED = new RegExp(`^(?:${REFUSAL})`)
/** ioredis's words for a sentinel that refused its credentials: the sentinel, and its reply. */
const SENTINEL_REFUSED = new RegExp(`^failed to connect to sentinel (\\S+) because ((?:${REFUSAL})[\\s\\S]*)`)

/**
 * Cluster: a node connection with commands waiting and nothing received for this long (at least
 * 1 s, 10 × commandTimeout) is destroyed, the commands queued on it failed: a node that stops
 * answering without a failover would otherwise hold every command sent to it until it is back.
 */
const socketTimeout = (commandTimeout: number) => Math.max(1_000, 10 * commandTimeout)

/**
 * ioredis's words for a call it did not send, or whose connection closed before the answer: its
 * options are none of the reader's business (in logs, and /stores lastError).
 */
const OWN_WORDS: ReadonlyArray<readonly [string, string]> = [
  ["Stream isn't writeable and enableOfflineQueue options is false", 'store not connected'],
  ["Cluster isn't ready and enableOfflineQueue options is false", 'store not connected'],
  ['Reached the max retries per request limit', 'connection closed before the answer']
]
const ownWords = (message: string): string => OWN_WORDS.find(([theirs]) => message.startsWith(theirs))?.[1] ?? message

/** Opens a Cluster node's connection if no call has yet; settles once it is ready or failed. */
function openNode (node: Redis): Promise<unknown> | undefined {
  if (node.status === 'wait') return node.connect().catch(() => {})
  if (node.status !== 'connecting' && node.status !== 'connect') return undefined
  return new Promise(resolve => {
    const done = () => { node.off('ready', done).off('close', done); resolve(undefined) }
    node.once('ready', done).once('close', done)
  })
}

/**
 * Ends a client's wait between reconnect attempts: it connects now. ioredis has no API for it; an
 * ioredis without its reconnectTimeout is left to wait, as before.
 */
function retryNow (client: Redis): void {
  const waiting = client as unknown as { reconnectTimeout?: ReturnType<typeof setTimeout> | null }
  if (waiting.reconnectTimeout == null) return
  clearTimeout(waiting.reconnectTimeout)
  waiting.reconnectTimeout = null
  client.connect().catch(() => {})
}

/**
 * Errors thrown by code, the store's own included (reading what a reply holds), not by a missing
 * server: ioredis fails unanswered calls with plain Errors (a timeout, a closed connection).
 */
const ownFault = (e: unknown): boolean => e instanceof TypeError || e instanceof SyntaxError || e instanceof RangeError || e instanceof ReferenceError

/**
 * Whether a key's tag record (JSON, null when absent) holds `tag`: a key set again with other tags,
 * or none (`[]`), is no longer deleted by it. An absent record (evicted by a maxmemory-policy that
 * evicts, while its key, read on every hit, stays) or one that cannot be read (not ours, corrupt)
 * counts as holding it: the purge deletes the key rather than leaving it served.
 */
function carries (record: string | null | undefined, tag: string): boolean {
  if (record == null) return true
  try {
    const tags: unknown = JSON.parse(record)
    return !Array.isArray(tags) || tags.includes(tag)
  } catch {
    return true
  }
}

/**
 * The maxmemory-policy by which a server evicts keys, from its CONFIG GET maxmemory* reply (name,
 * value, ...): undefined when it never evicts (noeviction, or maxmemory 0: no limit); null for a
 * reply of another shape.
 */
function evictionPolicy (reply: unknown): string | undefined | null {
  if (!Array.isArray(reply)) return null
  const value = (name: string): unknown => { const i = reply.indexOf(name); return i % 2 === 0 ? reply[i + 1] : undefined }
  const policy = value('maxmemory-policy')
  if (typeof policy !== 'string') return null
  return policy === 'noeviction' || Number(value('maxmemory')) === 0 ? undefined : policy
}

/**
 * A store on Redis (standalone, Sentinel or Cluster) through ioredis. Fails fast by design: no
 * offline queue (a command while disconnected fails at once; on Cluster, one for a node whose
 * connection is opening waits for it), no resend after a reconnect, every command bounded by
 * commandTimeout. Reconnects on its own, forever, with backoff.
 */
export class RedisStore implements OwnedStore {
  readonly name: string
  readonly type = 'redis' as const
  readonly cluster: boolean
  readonly #sentinel: boolean
  readonly commandTimeout: number
  readonly keySpace: string
  readonly #client: Client
  readonly #prefix: string
  readonly #events: RedisStoreEvents
  readonly #scripts = new Map<string, { lua: string, calls: ScriptBatches }>()
  /**
   * Its calls' deadlines, each commandTimeout after the call was made: a command's own (#commands)
   * starts when it is written, and an auto-pipelined one waits unwritten while the previous pipeline
   * awaits its replies (ioredis sends one at a time), so up to twice as long. A call past it while
   * the server is not #silent waited on the gateway (its commands not yet written, or just written,
   * after a stall of its own): it moves to #late.
   */
  readonly #deadlines: Deadlines<(err: Error) => void>
  /**
   * Calls past their deadline that the server was not yet late for: each fails when its command
   * does (commandTimeout after it was written), when the server is next #silent (on the command a
   * call waits behind), or commandTimeout later at the most.
   */
  readonly #late: Deadlines<(err: Error) => void>
  /** Its commands' deadlines, each commandTimeout after ioredis sent or queued it (see #timeCommands). */
  readonly #commands: Deadlines<Command>
  /** A command went commandTimeout unanswered since the last reply in time: the server, not the gateway, is late. */
  #silent = false
  #state: StoreSnapshot['state'] = 'connecting'
  #since = new Date().toISOString()
  /** Why the store is down, or will be (what "store is down" logs). */
  #lastError: string | null = null
  /** The error of the last call failed while up, whatever it was (lastError while up). */
  #lastFailed: string | null = null
  #closed = false
  /** Calls failed in a row for want of a server (see STALL_CALLS), and since when (performance.now()). */
  #failing = 0
  #failingSince = 0
  /**
   * Down for failing calls while connected: up again when a call is answered, through reconnects (a
   * server pausing writes answers a new connection's ready check, not the calls).
   */
  #stalled = false
  /** While #stalled, no call answered: up after #idleUpMs (see #upIfIdle, #pingIfIdle); cleared once up. */
  #idleUp: ReturnType<typeof setTimeout> | undefined
  /** That idle-up is #pingIfIdle's: calls refused meanwhile leave it be. */
  #idleUpPings = false
  #idleUpMs = RECONNECT_EVERY_MS
  /** Up by #upIfIdle, no call answered since: down again at the first call unanswered. */
  #upUnanswered = false
  /** The store dropped its connection (see #reconnect): until it closes, later reasons need not. */
  #reconnecting = false
  /** That reconnect leaves the store up (a standalone replica's: its reads are answered). */
  #reconnectingUp = false
  /** When the store last dropped its connection, and last got a READONLY reply (performance.now()). */
  #reconnectedAt = -Infinity
  #readOnlyAt = -Infinity
  /** Cluster: nodes unreachable, by address, with their connection's last error (see #watchNodes). */
  readonly #nodesDown = new Map<string, string>()
  /** Sentinel: subscribers to each sentinel's failover announcements. */
  readonly #watchers: Redis[] = []
  readonly #settled: Promise<CredentialsRefused | undefined>
  /** The first refusal of the credentials while connecting (the first attempt): see settled(). */
  #refused: CredentialsRefused | undefined
  /** What the server's maxmemory settings said at the last connection that could read them (see watchEviction). */
  #eviction: { readonly policy: string | undefined } | undefined
  readonly #evictionWatchers = new Set<(policy: string | undefined) => void>()

  constructor (name: string, s: RedisStoreSettings, events: RedisStoreEvents) {
    this.name = name
    this.#prefix = s.keyPrefix
    this.cluster = s.cluster !== undefined
    this.#sentinel = s.sentinels !== undefined
    this.commandTimeout = s.commandTimeout
    const timedOut = (expire: (err: Error) => void) => { expire(new Error('Command timed out')) }
    this.#deadlines = new Deadlines(s.commandTimeout, timedOut)
    this.#late = new Deadlines(s.commandTimeout, timedOut)
    this.#commands = new Deadlines<Command>(s.commandTimeout, command => {
      this.#silent = true
      this.#late.expireAll()
      command.reject(new Error('Command timed out'))
    })
    this.keySpace = redisKeySpace(s)
    this.#events = events
    const tls = s.tls === true ? {} : s.tls === false || s.tls === undefined ? undefined : { ...s.tls }
    const options: RedisOptions = {
      username: s.username,
      password: s.password,
      db: s.db,
      tls,
      connectTimeout: s.connectTimeout,
      // No commandTimeout: #timeCommands bounds each command as ioredis would.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: backoff,
      // Sentinel: follow the primary through a failover; a READONLY reply means it moved. (Standalone: see #readOnly.)
      reconnectOnError: s.url === undefined ? err => err.message.startsWith('READONLY') : null
    }
    if (s.cluster !== undefined) {
      const clusterOptions: ClusterOptions = {
        redisOptions: { ...options, db: undefined, socketTimeout: socketTimeout(s.commandTimeout) },
        enableOfflineQueue: false,
        clusterRetryStrategy: backoff,
        slotsRefreshTimeout: s.connectTimeout,
        // A call refused for want of a node (its connection closed, CLUSTERDOWN) fails at once: ioredis
        // would resend it after a delay and a slot refresh, up to maxRedirections times, past
        // commandTimeout and even once it had failed (a timed-out call whose connection then closed).
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        // MOVED and ASK are followed (a failover, a slot migration), a few times at most.
        maxRedirections: 3
      }
      const cluster = new (ioredis().Cluster)(s.cluster.map(hostPort), clusterOptions)
      // A call to a node whose connection is opening waits in it (ioredis gives node connections an
      // offline queue), bounded by commandTimeout, and fails if it cannot be opened: ioredis would fail
      // every call but the one that opened it. Not in the Cluster's own queue: without a slot map
      // (not ready) calls still fail at once. ioredis reads this option only to choose between the two.
      Object.defineProperty(cluster.options, 'enableOfflineQueue', { get: () => cluster.status === 'ready' })
      // TRYAGAIN (a multi-key call during a slot migration) fails at once too: ioredis resends it after
      // retryDelayOnTryAgain, whatever that is, even once the call has timed out.
      const handleError = cluster.handleError.bind(cluster)
      cluster.handleError = (error, ttl, handlers: { defaults (): void }) => {
        if (error.message.startsWith('TRYAGAIN ')) handlers.defaults()
        else handleError(error, ttl, handlers)
      }
      cluster.on('+node', (node: Redis) => { this.#timeCommands(node) })
      // A seed's refusal fails the slot map's read: the Cluster's own error says only "Failed to refresh slots cache."
      cluster.on('node error', (err: Error) => { if (err instanceof (ioredis().ReplyError as ErrorConstructor)) this.#refusing({ reply: err.message }) })
      this.#watchNodes(cluster)
      this.#client = cluster
    } else if (s.sentinels !== undefined) {
      const sentinel = { username: s.sentinelUsername, password: s.sentinelPassword, tls, connectTimeout: s.connectTimeout }
      this.#client = new (ioredis().Redis)({
        ...options,
        ...AUTO_PIPELINING,
        sentinels: s.sentinels.map(hostPort),
        name: s.name,
        sentinelUsername: sentinel.username,
        sentinelPassword: sentinel.password,
        // `tls` is for every connection: ioredis would reach the primary in plain TCP without
        // enableTLSForSentinelMode, and the sentinels without sentinelTLS.
        enableTLSForSentinelMode: tls !== undefined,
        sentinelTLS: tls,
        sentinelRetryStrategy: backoff,
        // A sentinel that accepts the connection but never answers is given up like a server would be.
        sentinelCommandTimeout: s.connectTimeout
      })
      this.#watchers = s.sentinels.map(address => this.#watchFailovers(address, s.name ?? '', sentinel))
      // ioredis words a sentinel's reply in its own message, then fails as if none were reachable.
      this.#client.on('sentinelError', (err: Error) => {
        const [, address, reply] = SENTINEL_REFUSED.exec(err.message) ?? []
        if (address !== undefined && reply !== undefined) this.#refusing({ sentinel: address, reply })
      })
    } else {
      this.#client = new (ioredis().Redis)(s.url ?? 'redis://127.0.0.1:6379', { ...options, ...AUTO_PIPELINING })
    }
    if (!this.cluster) this.#timeCommands(this.#client as Redis)
    this.#client.defineCommand('pcTag', { numberOfKeys: 2, lua: TAG_LUA })
    this.#client.defineCommand('pcTakeTag', { numberOfKeys: 2, lua: TAKE_TAG_LUA })
    this.#client.defineCommand('pcPurged', { numberOfKeys: 3, lua: PURGED_LUA })
    this.#client.defineCommand('pcSetExtended', { numberOfKeys: 1, lua: SET_EXTENDED_LUA })
    this.#settled = new Promise<void>(resolve => {
      // Cluster: the slot map, then a connection to every master (ioredis opens them at their first call).
      const client = this.#client
      const ready = client instanceof ioredis().Cluster ? () => { void Promise.all(client.nodes('master').map(openNode)).then(() => resolve()) } : resolve
      client.once('ready', ready).once('error', resolve)
      setTimeout(() => {
        // Still no answer nor error (a frozen server or sentinel): down, not connecting forever.
        if (this.#state === 'connecting' && !this.#closed) this.#set('down', this.#lastError ??= `not connected within connectTimeout (${s.connectTimeout} ms)`)
        resolve()
      }, s.connectTimeout).unref()
    }).then(() => this.#state === 'up' ? undefined : this.#refused)
    this.#client.on('ready', () => {
      this.#failing = 0
      if (this.#stalled) this.#upIfIdle()
      else this.#set('up', null)
      this.#readEviction()
    })
    this.#client.on('error', (err: Error) => {
      this.#lastError = err.message
      if (this.#state !== 'connecting') return
      if (err instanceof (ioredis().ReplyError as ErrorConstructor)) this.#refusing({ reply: err.message })
      this.#set('down', err.message)
    })
    // A server killed outright may close the connection with no error event: say so rather than null.
    this.#client.on('close', () => {
      const staysUp = this.#reconnectingUp
      this.#reconnecting = this.#reconnectingUp = false
      if (!this.#closed && !staysUp) this.#set('down', this.#lastError ??= 'connection closed')
    })
  }

  get (key: string): Promise<Buffer | undefined> {
    return this.#timed(async c => (await c.getBuffer(this.#prefix + storeKey(key))) ?? undefined)
  }

  set (key: string, value: StoreValue, options?: SetOptions): Promise<void> {
    if (expiredTtl(options?.ttlMs)) return this.delete(key).then(() => undefined)
    const given = ttlOf(options?.ttlMs)
    return this.#timed(async c => {
      const full = this.#prefix + storeKey(key)
      const tags = storeKeys(options?.tags ?? [])
      const calls = c as unknown as { pcTag: TagCaller, pcSetExtended: SetExtendedCaller }
      // Extending only: the key's TTL is known once it is written, and its tags follow it.
      const extend = options?.extendOnly === true
      const ttl = extend ? await calls.pcSetExtended(full, value, given) : given
      const write = (k: string, v: StoreValue) => ttl > 0 ? c.set(k, v, 'PX', ttl) : c.set(k, v)
      // An empty record, not none: deleteTag takes a key without one for a key whose record was evicted (see carries).
      const tagged = tags.length === 0 ? [write(this.#tagsOf(full), '[]')] : [write(this.#tagsOf(full), JSON.stringify(tags)), ...tags.map(t => calls.pcTag(this.#tagKey(t), this.#expiryKey(t), full, ttl))]
      // The value sent last: Redis runs one connection's commands in order, so a value written is
      // one its tags name (a connection lost midway leaves at most tags without their value), never
      // one deleteTag misses. (On Cluster they are on other nodes; extending, the value is written
      // first, for its TTL: the cache's Vary marker, whose variants carry the tags that matter.)
      await Promise.all(extend ? tagged : [...tagged, write(full, value)])
    })
  }

  delete (...keys: string[]): Promise<number> {
    return this.#timed(c => this.#del(c, keys.map(k => this.#prefix + storeKey(k))))
  }

  deletePrefix (prefix: string): Promise<number> {
    return this.#deleting(async (c, deleted) => {
      const match = (this.#prefix + storeKey(prefix)).replace(/[*?[\]\\]/g, '\\$&') + '*'
      const nodes = c instanceof ioredis().Cluster ? c.nodes('master') : [c]
      for (const node of nodes) {
        for await (const batch of node.scanStream({ match, count: 500 }) as AsyncIterable<string[]>) {
          deleted(await this.#del(c, batch.filter(k => !k.startsWith(this.#tagSets))))
        }
      }
    })
  }

  /**
   * Deletes the keys in the tag's set that still carry the tag (not those re-set without it since).
   * The set is taken whole first (TAKE_TAG_LUA): a key set with the tag during the purge, by this
   * instance or another, new or one just deleted, stays in the tag's set for the next purge. Then
   * PURGE_BATCH members at a time, each batch leaving the purge set once done: a large set neither
   * floods the server (its commands timing out, the store taken for down) nor starts over when a
   * purge fails midway; the next one goes on with what is left.
   */
  deleteTag (tag: string): Promise<number> {
    return this.#deleting(async (c, deleted) => {
      tag = storeKey(tag)
      const tagKey = this.#tagKey(tag)
      const purgeKey = `${tagKey}:purge`
      const calls = c as unknown as { pcTakeTag: TakeTagCaller, pcPurged: PurgedCaller }
      await calls.pcTakeTag(tagKey, purgeKey)
      for (;;) {
        // Distinct members; another purge of the tag may be deleting the same ones, or have moved more in.
        const keys = await c.srandmember(purgeKey, PURGE_BATCH) as string[]
        if (keys.length === 0) return
        const tagsOf = await Promise.all(keys.map(k => c.get(this.#tagsOf(k))))
        deleted(await this.#del(c, keys.filter((_, i) => carries(tagsOf[i], tag))))
        await calls.pcPurged(purgeKey, tagKey, this.#expiryKey(tag), ...keys)
      }
    })
  }

  /**
   * A deletion in steps (no deadline: it takes as long as its keys do), resolving with how many keys
   * `steps` reported deleted; failing midway, with the count so far as the StoreError's `deleted`.
   */
  async #deleting (steps: (c: Client, deleted: (n: number) => void) => Promise<void>): Promise<number> {
    let n = 0
    try {
      await this.#timed(c => steps(c, d => { n += d }), 'STORE_ERROR', false)
      return n
    } catch (err) {
      (err as StoreError).deleted = n
      throw err
    }
  }

  run<R> (script: StoreScript<R>, keys: readonly string[], args: readonly (string | number)[]): Promise<R> {
    let batches = this.#scripts.get(script.name)
    if (batches === undefined) {
      batches = this.#batchesOf(script)
      this.#scripts.set(script.name, batches)
    } else if (batches.lua !== script.lua) {
      return Promise.reject(twoScriptsNamed(script.name))
    }
    const calls = batches.calls
    return this.#timed(() => calls.call(keys.map(k => this.#prefix + storeKey(k)), args) as Promise<R>, 'STORE_SCRIPT_ERROR')
  }

  #batchesOf (script: StoreScript): { lua: string, calls: ScriptBatches } {
    // ioredis keeps the SHA, sends EVALSHA and falls back to EVAL on NOSCRIPT (a restarted or new server).
    this.#client.defineCommand(script.name, { lua: batchLua(script.lua) })
    // A batch is already one command per turn: auto-pipelining would only hold it for another turn.
    ;(this.#client.options.autoPipeliningIgnoredCommands ??= []).push(script.name)
    const call = (this.#client as unknown as Record<string, ScriptCaller>)[script.name] as ScriptCaller
    const send = (keys: string[], args: Array<string | number>) => call.call(this.#client, keys.length, ...keys, ...args)
    return { lua: script.lua, calls: new ScriptBatches(send, this.#client instanceof ioredis().Cluster) }
  }

  /**
   * Resolves once the first connection attempt has ended (at most connectTimeout): with the
   * refusal of the credentials (by the server, on Cluster a seed, or a sentinel) it ended in, if it
   * ended down after one.
   */
  settled (): Promise<CredentialsRefused | undefined> { return this.#settled }

  /** Keeps the first refusal of the credentials seen while connecting (see REFUSAL); other errors are outages. */
  #refusing (refusal: CredentialsRefused): void {
    if (this.#state === 'connecting' && REFUSED.test(refusal.reply)) this.#refused ??= refusal
  }

  /**
   * Calls `watcher` with the maxmemory-policy by which the server evicts keys for room (on Cluster,
   * the first primary's that does), or undefined when it does not (noeviction, or no maxmemory), as
   * read at each connection: at once when read already. Never when it cannot be read (a managed
   * Redis that disables CONFIG). Returns a function that stops the calls.
   */
  watchEviction (watcher: (policy: string | undefined) => void): () => void {
    this.#evictionWatchers.add(watcher)
    if (this.#eviction !== undefined) watcher(this.#eviction.policy)
    return () => { this.#evictionWatchers.delete(watcher) }
  }

  /** Reads each primary's maxmemory and maxmemory-policy (see watchEviction); errors are ignored. */
  #readEviction (): void {
    const c = this.#client
    const nodes = c instanceof ioredis().Cluster ? c.nodes('master') : [c as Redis]
    void Promise.all(nodes.map(node => node.config('GET', 'maxmemory*').then(evictionPolicy).catch(() => null))).then(read => {
      if (this.#closed || read.every(p => p === null)) return
      this.#eviction = { policy: read.find(p => p !== null && p !== undefined) ?? undefined }
      for (const w of this.#evictionWatchers) w(this.#eviction.policy)
    })
  }

  snapshot (): StoreSnapshot {
    const snapshot = { name: this.name, type: 'redis' as const, state: this.#state, since: this.#since, lastError: this.#state === 'up' ? this.#lastFailed : this.#lastError }
    return this.cluster ? { ...snapshot, nodesDown: [...this.#nodesDown].map(([node, error]) => ({ node, error })) } : snapshot
  }

  async close (): Promise<void> {
    this.#closed = true
    clearTimeout(this.#idleUp)
    for (const w of this.#watchers) w.disconnect()
    await this.#client.quit().catch(() => this.#client.disconnect())
  }

  /**
   * Subscribes to a sentinel's +switch-master: at a failover the store reconnects to the new primary
   * at once, rather than writing to the old one until it is demoted (seconds later: counts lost, and
   * an instance connecting meanwhile would use the new one). Not ioredis's failoverDetector: its
   * sentinel connections have no error listener (ioredis prints each of their errors while a
   * sentinel is down) and outlive quit().
   */
  #watchFailovers (address: string, name: string, sentinel: Pick<RedisOptions, 'username' | 'password' | 'tls' | 'connectTimeout'>): Redis {
    // maxRetriesPerRequest null: the SUBSCRIBE waits for the sentinel, then ioredis renews it after every reconnect.
    const watcher = new (ioredis().Redis)({ ...hostPort(address), ...sentinel, retryStrategy: backoff, maxRetriesPerRequest: null })
    // A sentinel's outage matters when the store connects; its errors then show in lastError.
    watcher.on('error', () => {})
    watcher.on('message', (_channel: string, message: string) => {
      const [master, , , ip, port] = message.split(' ') // <name> <old ip> <old port> <new ip> <new port>
      // Already on the new primary (a reconnect asked a sentinel after the switch): nothing to leave.
      const stream = (this.#client as Redis).stream as Redis['stream'] | undefined
      if (master !== name || (stream?.remoteAddress === ip && String(stream?.remotePort) === port)) return
      // What "store is down" logs: the brief reconnect is this one.
      if (this.#state === 'up') this.#lastError = `failover announced by sentinel ${address}: +switch-master ${message}`
      // Down already (the primary crashed): connect now, not when the backoff (up to 2 s) runs out.
      if (this.#client.status === 'reconnecting') retryNow(this.#client as Redis)
      else this.#reconnect()
    })
    watcher.subscribe('+switch-master').catch(() => {})
    return watcher
  }

  /**
   * Cluster: a node whose connection fails (refused, reset, or dropped by socketTimeout for not
   * answering) is reported unreachable until a connection to it is ready again, or until it holds no
   * slot (a failover gave them to its replica). The store stays up meanwhile: only calls for the
   * node's keys fail, and the other nodes' answers would end any stall (#answered).
   */
  #watchNodes (cluster: Cluster): void {
    // The connections calls use: not the Cluster's `node error`, which a slot refresh's own connection emits too, with no `ready` to end it.
    cluster.on('+node', (redis: Redis) => {
      const node = `${redis.options.host}:${redis.options.port}`
      redis.on('error', (err: Error) => {
        if (this.#closed) return
        const known = this.#nodesDown.has(node)
        this.#nodesDown.set(node, err.message)
        if (!known) this.#events.node?.(this, node, err.message)
      })
      redis.on('ready', () => this.#nodeBack(node))
    })
    cluster.on('refresh', () => {
      if (this.#nodesDown.size === 0) return
      const holding = new Set(cluster.slots.flat())
      for (const node of this.#nodesDown.keys()) if (!holding.has(node)) this.#nodeBack(node)
    })
  }

  #nodeBack (node: string): void {
    if (this.#nodesDown.delete(node)) this.#events.node?.(this, node, null)
  }

  /** Where tag sets (`tag:{<tag>}`, `tag:{<tag>}:purge`, `tag:{<tag>}:expiry`) and tag records live: reserved, so deletePrefix leaves them to deleteTag. */
  get #tagSets (): string { return `${this.#prefix}tag:{` }

  /**
   * The tag as its set's hash tag holds it, escaped one to one (`{`, `}` and `\` as `\7B`, `\7D`,
   * `\5C`): two tags never share a set. Other tags keep the key earlier versions gave them (URL
   * tags never hold `\`: paths with one are refused), so the sets in a running Redis stay theirs.
   */
  #tagKey (tag: string): string { return `${this.#tagSets}${tag.replace(/[{}\\]/g, c => `\\${c.charCodeAt(0).toString(16).toUpperCase()}`)}}` }

  /** The tag's members by expiry (see TAG_LUA), in its set's slot. */
  #expiryKey (tag: string): string { return `${this.#tagKey(tag)}:expiry` }

  /** The tags a key was last set with (JSON, `[]` for none), expiring with it. */
  #tagsOf (fullKey: string): string { return `${this.#tagSets}}${fullKey}` }

  /** DEL one key per command (keys of one call may live in different cluster slots), with its tag record. */
  async #del (c: Client, fullKeys: readonly string[]): Promise<number> {
    const counts = await Promise.all(fullKeys.map(async k => (await Promise.all([c.del(k), c.del(this.#tagsOf(k))]))[0]))
    return counts.reduce((a, b) => a + b, 0)
  }

  /**
   * Runs a call, timed and counted: no async frame of its own on the hot path. Bounded by
   * commandTimeout from now (#deadlines) or, when the gateway was what kept it waiting, from when its
   * command is written (#late), a late reply ignored;
   * `bounded` false for a purge's many commands, each bounded from when it is sent (#timeCommands).
   * Fails with a StoreError:
   * STORE_UNAVAILABLE when no server answered, `answered` for an error reply, STORE_ERROR for the
   * store's own failure to read a reply.
   */
  #timed<T> (command: (c: Client) => Promise<T>, answered: StoreErrorCode = 'STORE_ERROR', bounded = true): Promise<T> {
    const started = performance.now()
    let sent: Promise<T>
    try {
      sent = command(this.#client)
    } catch (err) {
      sent = Promise.reject(err as Error)
    }
    if (!bounded) return sent.then(value => this.#done(started, value), (err: unknown) => { throw this.#failed(started, err as Error, answered) })
    return new Promise<T>((resolve, reject) => {
      let late = false
      let id = 0
      const expire = (err: Error) => {
        if (late || this.#silent) reject(this.#failed(started, err, answered))
        else {
          late = true
          id = this.#late.add(expire)
        }
      }
      id = this.#deadlines.add(expire, started)
      sent.then(value => {
        if ((late ? this.#late : this.#deadlines).take(id)) resolve(this.#done(started, value))
      }, (err: unknown) => {
        if ((late ? this.#late : this.#deadlines).take(id)) reject(this.#failed(started, err as Error, answered))
      })
    })
  }

  /**
   * ioredis's commandTimeout on the store's own queue: each command fails commandTimeout after it is
   * sent or queued on `redis` (what alone bounds a purge's commands, a connection's ready check, a
   * call waiting for a Cluster node's connection, and moves auto-pipelines on past a frozen server).
   * ioredis's timers, like any, run before the event loop reads sockets: after the process was busy
   * for longer (a stall of the gateway, not of the server) they failed commands whose replies were
   * waiting unread. Deadlines expire after those are read. A reply after its deadline is no answer
   * (#done marks those in time): a server answering every call late fails them all, and is down.
   * One timing out makes the server #silent until a reply in time.
   */
  #timeCommands (redis: Redis): void {
    const send = redis.sendCommand.bind(redis)
    redis.sendCommand = (command, stream) => {
      const id = this.#commands.add(command)
      // Taken when settled: a command's reply (a cached response) is not held for commandTimeout.
      const { resolve, reject } = command
      command.resolve = (value: unknown) => {
        if (this.#commands.take(id)) this.#silent = false
        resolve(value)
      }
      command.reject = (err: Error) => {
        // An error reply in time is an answer too (MOVED, NOSCRIPT); a closed connection is not.
        if (this.#commands.take(id) && err instanceof (ioredis().ReplyError as ErrorConstructor)) this.#silent = false
        reject(err)
      }
      return send(command, stream)
    }
  }

  #done<T> (started: number, value: T): T {
    if (this.#failing !== 0 || this.#stalled || this.#upUnanswered) this.#answered()
    this.#events.command(this, (performance.now() - started) / 1000)
    return value
  }

  #failed (started: number, e: Error, answered: StoreErrorCode): Error {
    const reply = e instanceof (ioredis().ReplyError as ErrorConstructor)
    const unavailable = reply ? UNAVAILABLE.test(e.message) : !ownFault(e)
    const message = ownWords(e.message)
    // While disconnected, the connection's error says more than "store not connected";
    // during a reconnect of the store's own, its reason does; an answer (WRONGTYPE) is no reason to be down.
    if (unavailable && this.#state === 'up' && !this.#reconnecting) this.#lastError = message
    if (this.#state === 'up') this.#lastFailed = message
    if (unavailable) this.#unanswered(e)
    else if (this.#failing !== 0 || this.#stalled || this.#upUnanswered) this.#answered()
    this.#events.failed(this)
    this.#events.command(this, (performance.now() - started) / 1000)
    const code = unavailable ? 'STORE_UNAVAILABLE' : reply ? answered : 'STORE_ERROR'
    return message === e.message ? storeError(code, e) : new StoreError(code, message, e)
  }

  /** A call answered (a result or a reply error of its own): a stall is over. */
  #answered (): void {
    this.#upUnanswered = false
    this.#idleUpMs = RECONNECT_EVERY_MS
    this.#up()
  }

  #up (): void {
    this.#failing = 0
    if (!this.#stalled) return
    this.#stalled = false
    clearTimeout(this.#idleUp)
    this.#idleUp = undefined
    this.#idleUpPings = false
    this.#set('up', null)
  }

  /**
   * A new connection while #stalled: up at its first call answered, or once #idleUpMs has passed
   * with none failed (a store no one calls would otherwise stay down); one failed meanwhile, or the
   * connection gone, #pingIfIdle checks on it (no call may come to). Only until a call goes
   * unanswered: then down again, and the next idle-up waits twice as long (sparse calls during a
   * long write pause would otherwise find it up most of the time).
   */
  #upIfIdle (): void {
    clearTimeout(this.#idleUp)
    this.#idleUpPings = false
    this.#idleUp = setTimeout(() => {
      if (this.#failing !== 0 || this.#client.status !== 'ready') this.#pingIfIdle()
      else {
        this.#upUnanswered = true
        this.#up()
      }
    }, this.#idleUpMs).unref()
  }

  /**
   * Down for refusal replies (BUSY, MISCONF, LOADING, CLUSTERDOWN), or for timeouts with no new
   * connection (Cluster, or one made under RECONNECT_EVERY_MS ago): the connection is kept, so no
   * ready check starts #upIfIdle. A PING after #idleUpMs (on Cluster, to every master: one may be
   * the node refusing) stands for a call: answered without a refusal (a PING is refused while BUSY
   * or MISCONF lasts), up as by #upIfIdle; else down still, the next PING twice as late.
   */
  #pingIfIdle (): void {
    clearTimeout(this.#idleUp)
    this.#idleUpPings = true
    const idleUp = this.#idleUp = setTimeout(() => {
      const c = this.#client
      const nodes = c instanceof ioredis().Cluster ? c.nodes('master') : [c as Redis]
      const answered = (err: Error) => err instanceof (ioredis().ReplyError as ErrorConstructor) && !UNAVAILABLE.test(err.message)
      void Promise.all(nodes.map(node => node.ping().then(() => true, answered))).then(pongs => {
        // Up meanwhile, or a new connection's idle-up in its place.
        if (this.#closed || !this.#stalled || this.#idleUp !== idleUp) return
        if (pongs.length !== 0 && pongs.every(Boolean)) {
          this.#upUnanswered = true
          this.#up()
        } else {
          this.#idleUpMs = Math.min(2 * this.#idleUpMs, MAX_IDLE_UP_MS)
          this.#pingIfIdle()
        }
      })
    }, this.#idleUpMs).unref()
  }

  /**
   * A call failed for want of a server: enough of them in a row over long enough, the store is down.
   * Unanswered (timeouts, not a server's refusal), the connection is dropped then: one that a
   * partition or a host gone without a reset left open would otherwise be kept by the kernel for
   * many minutes, each timed-out command held on it. Refused, or not dropped (Cluster, or a new one
   * under RECONNECT_EVERY_MS old), it is kept: #pingIfIdle checks on it.
   */
  #unanswered (err: Error): void {
    const now = performance.now()
    if (err.message.startsWith('READONLY')) this.#readOnly(now)
    if (this.#failing++ === 0) this.#failingSince = now
    if (this.#upUnanswered || (this.#failing >= STALL_CALLS && now - this.#failingSince >= STALL_MS)) {
      if (this.#upUnanswered) {
        this.#upUnanswered = false
        this.#idleUpMs = Math.min(2 * this.#idleUpMs, MAX_IDLE_UP_MS)
      }
      if (this.#state === 'up') {
        this.#stalled = true
        this.#set('down', this.#lastError)
      }
      if (!this.#stalled) return
      if (!(err instanceof (ioredis().ReplyError as ErrorConstructor))) {
        if (now - this.#reconnectedAt >= RECONNECT_EVERY_MS) this.#reconnect()
        // Still on this connection: no ready check will start an idle-up.
        if (this.#client.status === 'ready' && !this.#reconnecting && this.#idleUp === undefined) this.#pingIfIdle()
      } else if (!this.#idleUpPings) this.#pingIfIdle()
    }
  }

  /**
   * A READONLY reply: the server is a replica. Sentinel: the primary was demoted, the sentinels name
   * the new one (ioredis reconnects on a command's own READONLY reply, not on one inside a script
   * batch's reply array). A standalone URL may name a primary that moved (a DNS name after a failover):
   * reconnected to now and then, the store staying up (a replica answers reads), and reported.
   */
  #readOnly (now: number): void {
    if (this.#sentinel) this.#reconnect()
    if (this.#sentinel || this.cluster) return
    if (now - this.#readOnlyAt >= REPLICA_NOTICE_MS) this.#events.replica?.(this)
    this.#readOnlyAt = now
    if (now - this.#reconnectedAt >= RECONNECT_EVERY_MS) this.#reconnect(true)
  }

  /**
   * Drops the connection for a new one (with Sentinel: to the primary the sentinels name then). Destroyed,
   * not ended: a peer that no longer answers would hold it, and the commands queued on it, for
   * ioredis's disconnectTimeout; they fail at once (maxRetriesPerRequest 0). Not on Cluster, whose
   * node connections socketTimeout drops.
   */
  #reconnect (staysUp = false): void {
    if (this.cluster || this.#reconnecting || this.#client.status !== 'ready') return
    this.#reconnecting = true
    this.#reconnectingUp = staysUp
    this.#reconnectedAt = performance.now()
    ;(this.#client as Redis).stream.destroy()
  }


  #set (state: StoreSnapshot['state'], error: string | null): void {
    if (state === this.#state) return
    this.#state = state
    // lastError tells why the store is not up, or which calls failed since it is: not an outage since over.
    if (state === 'up') this.#lastError = this.#lastFailed = null
    this.#since = new Date().toISOString()
    this.#events.state(this, state, error)
  }
}
