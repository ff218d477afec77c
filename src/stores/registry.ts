import type { Static } from '@sinclair/typebox'
import type { Logger } from 'pino'
import { toBytes } from '../config/byte-size.ts'
import { ConfigError } from '../config/config-error.ts'
import { toMs } from '../config/duration.ts'
import type { LoadedConfig } from '../config/load.ts'
import { formatPath, locate, type KeyPath } from '../config/positions.ts'
import { hiddenValues } from '../config/redact.ts'
import type { StoreConfig } from '../config/store-schema.ts'
import { hideUserinfo } from '../config/url-userinfo.ts'
import { readYaml } from '../config/yaml-document.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { MEMORY_DEFAULTS, MEMORY_PARTS, MemoryStore, type MemoryPart, type MemoryStoreSettings } from './memory-store.ts'
import { REDIS_DEFAULTS, RedisStore, type RedisStoreEvents, type RedisStoreSettings } from './redis-store.ts'
import type { CredentialsRefused, OwnedStore, Store, StoreSnapshot } from './store.ts'

export type StoreConfigs = Readonly<Record<string, Static<typeof StoreConfig>>>

/** The stores one runtime uses, held until it is disposed. */
export interface StoreLease {
  get (name: string): Store | undefined
  /**
   * Resolves once every store has ended its first connection attempt (at most its connectTimeout).
   * A store new in this lease whose server or sentinel refused its credentials: on `reload` (the
   * config the lease is for), fails with a ConfigError at the key holding them; at start, logged.
   */
  settled (reload?: Pick<LoadedConfig, 'file' | 'text'>): Promise<void>
  release (): Promise<void>
}

interface Entry { readonly name: string, readonly settings: string, readonly store: OwnedStore, users: number }

type StoreSettings = ({ readonly type: 'memory' } & MemoryStoreSettings) | ({ readonly type: 'redis' } & RedisStoreSettings)

/**
 * What a store is made from: defaults filled in, sizes in bytes, durations in ms, `tls: false` as
 * none and `tls: true` as `{}`, rejectUnauthorized true (Node's default) unless written. Configs
 * that give equal settings (settingsKey) get the same store on reload: `maxBytes: 64MiB` and
 * 67108864, `commandTimeout: 1s` and `1000ms`, a default written out change nothing (docs/stores.md#reloads).
 */
function settingsOf (c: Static<typeof StoreConfig>): StoreSettings {
  if (c.type === 'memory') {
    return { type: 'memory', maxEntries: c.maxEntries ?? MEMORY_DEFAULTS.maxEntries, maxBytes: c.maxBytes === undefined ? MEMORY_DEFAULTS.maxBytes : toBytes(c.maxBytes) }
  }
  const { tls, ...rest } = c
  return {
    ...rest,
    tls: tls === undefined || tls === false ? undefined : { rejectUnauthorized: true, ...(tls === true ? {} : tls) },
    db: c.cluster === undefined ? c.db ?? REDIS_DEFAULTS.db : undefined,
    keyPrefix: c.keyPrefix ?? REDIS_DEFAULTS.keyPrefix,
    connectTimeout: c.connectTimeout === undefined ? REDIS_DEFAULTS.connectTimeout : toMs(c.connectTimeout),
    commandTimeout: c.commandTimeout === undefined ? REDIS_DEFAULTS.commandTimeout : toMs(c.commandTimeout)
  }
}

/** JSON with every object's keys sorted and undefined ones left out: `{ type, maxEntries }` and `{ maxEntries, type }` are the same settings. */
const settingsKey = (settings: StoreSettings): string => JSON.stringify(settings, (_key, v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map(k => [k, (v as Record<string, unknown>)[k]])) : v)

/** Who refused a store's credentials. */
const refusedWords = (refused: CredentialsRefused): string => refused.sentinel === undefined ? 'its Redis server' : `sentinel ${refused.sentinel}`

/**
 * The key of a store's config to correct for `refused`: where its credentials are written, else the
 * store itself (a server asking for credentials the store gives none of).
 */
function credentialsKey (name: string, c: Static<typeof StoreConfig>, refused: CredentialsRefused): KeyPath {
  const keys = c.type === 'memory'
    ? []
    : refused.sentinel !== undefined
      ? [c.sentinelPassword !== undefined && 'sentinelPassword', c.sentinelUsername !== undefined && 'sentinelUsername']
      : [c.password !== undefined && 'password', c.username !== undefined && 'username', c.url?.includes('@') === true && 'url']
  const key = keys.find(k => k !== false)
  return ['stores', name, ...key === undefined ? [] : [key]]
}

/** A reload's stores refused their credentials: a config error at each one's key, never quoting the secrets. */
function refusedError ({ file, text }: Pick<LoadedConfig, 'file' | 'text'>, refusals: ReadonlyArray<{ name: string, refused: CredentialsRefused, path: KeyPath }>, secrets: readonly string[]): ConfigError {
  const { doc, lines } = readYaml(text)
  return new ConfigError(refusals.map(({ name, refused, path }) => ({
    file,
    // The store as a whole at its name, not at its first key.
    ...locate(doc, lines, path, path.length === 2 ? 'key' : 'value'),
    path: formatPath(path),
    message: `store "${name}": ${refusedWords(refused)} refused its credentials (${refused.reply}); the active config keeps serving, with its stores`
  })), secrets)
}

/** The store that always exists. */
export const DEFAULT_STORE = 'memory'

/**
 * The stores of the process, shared by the runtimes of successive configs. A reload that leaves a
 * store's settings unchanged gets the same store (same Redis connections, same memory contents);
 * a store whose settings changed, or that is gone, is closed once the last runtime using it has
 * released it (after draining).
 */
export class StoreRegistry {
  readonly #entries: Entry[] = []
  readonly #log: Logger
  readonly #events: RedisStoreEvents
  readonly #metrics: Metrics | undefined

  constructor (log: Logger, metrics?: Metrics) {
    this.#log = log
    this.#metrics = metrics
    this.#events = {
      state: (store, state, error) => {
        if (state === 'down') log.warn({ store: store.name, error }, 'store is down: plugins apply their failure rule until it is back')
        else if (state === 'up') log.info({ store: store.name }, 'store is up')
      },
      failed: store => metrics?.storeErrors.inc({ store: store.name }),
      replica: store => log.warn({ store: store.name }, 'store\'s server is a read-only replica (READONLY): writes fail; reconnecting at most every 5 s in case its address now names a primary'),
      node: (store, node, error) => {
        if (error !== null) log.warn({ store: store.name, node, error }, 'store\'s Cluster node is unreachable: calls for its keys fail until it is back or replaced (the store stays up)')
        else log.info({ store: store.name, node }, 'store\'s Cluster node is back, or its slots moved to another')
      },
      command: (store, seconds) => metrics?.storeCommandDuration.series(store.name).observe(seconds)
    }
    metrics?.watchStores(() => this.snapshot())
  }

  /** The stores of a config (`memory` added when not configured): existing ones where unchanged. */
  acquire (configs: StoreConfigs = {}): StoreLease {
    const wanted: StoreConfigs = { [DEFAULT_STORE]: { type: 'memory' }, ...configs }
    const held = new Map<string, Entry>()
    // Only a store this config brings is checked for refused credentials: one kept is in service already.
    const created = new Set<Entry>()
    try {
      for (const [name, config] of Object.entries(wanted)) {
        const settings = settingsOf(config)
        const key = settingsKey(settings)
        let entry = this.#entries.find(e => e.name === name && e.settings === key)
        if (entry === undefined) {
          entry = { name, settings: key, store: this.#create(name, settings), users: 0 }
          this.#entries.push(entry)
          created.add(entry)
        }
        entry.users++
        held.set(name, entry)
      }
    } catch (err) {
      // A store that cannot be created fails the config: the ones already taken are given back
      // (closed when new), or their connections would outlive it and keep the process alive.
      for (const e of held.values()) void this.#release(e)
      throw err
    }
    let released = false
    return {
      get: name => held.get(name)?.store,
      settled: async reload => {
        const ended = await Promise.all([...held.values()].map(async e => ({ e, refused: await e.store.settled?.() })))
        const refusals = ended.flatMap(({ e, refused }) => refused === undefined || !created.has(e)
          ? []
          : [{ name: e.name, refused, path: credentialsKey(e.name, wanted[e.name] as Static<typeof StoreConfig>, refused) }])
        if (refusals.length === 0) return
        if (reload !== undefined) throw refusedError(reload, refusals, hiddenValues(configs))
        for (const { name, refused, path } of refusals) {
          this.#log.error({ store: name, key: formatPath(path), error: refused.reply, ...refused.sentinel === undefined ? {} : { sentinel: refused.sentinel } },
            `${refusedWords(refused)} refused the store's credentials: it stays down until they are corrected, or the server takes them`)
        }
      },
      release: async () => {
        if (released) return
        released = true
        await Promise.all([...held.values()].map(e => this.#release(e)))
      }
    }
  }

  /** Every store in use, the newest first for a name held in two versions during a reload. */
  snapshot (): StoreSnapshot[] {
    const seen = new Set<string>()
    const out: StoreSnapshot[] = []
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const e = this.#entries[i] as Entry
      if (seen.has(e.name)) continue
      seen.add(e.name)
      out.push(e.store.snapshot())
    }
    return out.sort((a, b) => a.name.localeCompare(b.name))
  }

  async #release (e: Entry): Promise<void> {
    if (--e.users > 0) return
    this.#entries.splice(this.#entries.indexOf(e), 1)
    await e.store.close().catch((err: Error) => this.#log.warn({ store: e.name, err: err.message }, 'closing a store failed'))
    // Once closed: a call failing as it closes would bring its series back.
    if (!this.#entries.some(other => other.name === e.name)) this.#metrics?.storeGone(e.name)
  }

  /** Counts a memory store's evictions; its series exist at 0 from the start, so the first eviction shows as an increase. */
  #evictions (store: string): ((part: MemoryPart) => void) | undefined {
    const counter = this.#metrics?.storeEvictions
    if (counter === undefined) return undefined
    const parts = new Map(MEMORY_PARTS.map(part => [part, counter.labels(store, part)]))
    for (const child of parts.values()) child.inc(0)
    return part => parts.get(part)?.inc()
  }

  #create (name: string, s: StoreSettings): OwnedStore {
    if (s.type === 'memory') return new MemoryStore(name, s, this.#evictions(name))
    let store: RedisStore
    try {
      store = new RedisStore(name, s, this.#events)
    } catch (err) {
      // Not rethrown as is: Node's URL errors carry the whole URL, password included, in `input`.
      throw new Error(`store "${name}": its Redis client could not be created: ${hideUserinfo((err as Error).message)}`)
    }
    // Its error series exists at 0 from the start, so the first failure shows as an increase.
    this.#metrics?.storeErrors.inc({ store: name }, 0)
    return store
  }
}
