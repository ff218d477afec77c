import { Type, type TSchema } from '@sinclair/typebox'
import { ByteSize } from './byte-size.ts'
import { Duration } from './duration.ts'

// The `stores:` section: named places plugins keep state in (rate-limit counters, cached responses).
const closed = { additionalProperties: false } as const
const HostPort = Type.String({ pattern: '^[^\\s:]+:\\d+$|^\\[[0-9a-fA-F:]+\\]:\\d+$', errorMessage: 'must be host:port, e.g. 10.0.0.1:26379' })

const MemoryStoreConfig = Type.Object({
  type: Type.Literal('memory'),
  maxEntries: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000, description: 'Most entries held; the least recently used are evicted first. At most 10000000 (its index is allocated whole on first use). Default 100000.' })),
  maxBytes: Type.Optional(ByteSize({ minimum: 1024, description: 'Most bytes held (keys, values and surrogate-key tags): bytes, or a size such as 256MiB. Default 64MiB.' }))
}, { ...closed, description: 'Per process, bounded, lost on restart (kept across reloads).' })

// Keys that say nothing where there is no sentinel.
const sentinelOnly = { not: {}, errorMessage: 'is for sentinels only' }

const RedisStoreConfig = Type.Object({
  type: Type.Literal('redis'),
  url: Type.Optional(Type.String({ pattern: '^rediss?://', errorMessage: 'must be a redis:// or rediss:// URL', description: 'Standalone server, e.g. "${REDIS_URL:-redis://127.0.0.1:6379}".' })),
  sentinels: Type.Optional(Type.Array(HostPort, { minItems: 1, description: 'Sentinel addresses (host:port); needs name.' })),
  name: Type.Optional(Type.String({ minLength: 1, description: 'With sentinels: the monitored primary\'s name.' })),
  cluster: Type.Optional(Type.Array(HostPort, { minItems: 1, description: 'Redis Cluster seed nodes (host:port).' })),
  username: Type.Optional(Type.String({ minLength: 1 })),
  password: Type.Optional(Type.String({ minLength: 1, description: 'Use "${ENV}": it is redacted in GET /config and logs.' })),
  sentinelUsername: Type.Optional(Type.String({ minLength: 1, description: 'With sentinels: the user the sentinels require (username and password are the primary\'s).' })),
  sentinelPassword: Type.Optional(Type.String({ minLength: 1, description: 'With sentinels: the password the sentinels require (their requirepass). Use "${ENV}".' })),
  tls: Type.Optional(Type.Union([Type.Boolean(), Type.Object({
    ca: Type.Optional(Type.String({ description: 'PEM CA bundle (the text, e.g. from "${REDIS_CA}").' })),
    servername: Type.Optional(Type.String()),
    rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'Default true.' }))
  }, closed)], { description: 'TLS to Redis, on every connection (with sentinels, to them as well as to the primary): true, or settings.' })),
  db: Type.Optional(Type.Integer({ minimum: 0, description: 'Database number (not with cluster). Default 0.' })),
  keyPrefix: Type.Optional(Type.String({ description: 'Prepended to every key, so several gateways can share a server. Default "pc:".' })),
  connectTimeout: Type.Optional(Type.Union([Duration], { description: 'Time to connect. Default 2s.' })),
  commandTimeout: Type.Optional(Type.Union([Duration], { description: 'A call fails this long after it is made (after its command is written, when the gateway itself held it up) without a reply; plugins then apply their own failure rule. Default 100ms.' }))
}, {
  ...closed,
  description: 'Shared by every instance. Exactly one of url, sentinels (+ name) or cluster.',
  dependencies: {
    url: { type: 'object', properties: { sentinelUsername: sentinelOnly, sentinelPassword: sentinelOnly } },
    cluster: {
      type: 'object',
      properties: {
        sentinelUsername: sentinelOnly,
        sentinelPassword: sentinelOnly,
        // A brace in the prefix makes Redis hash every key by it, not by the plugins' own {tags}: their multi-key calls fail CROSSSLOT.
        keyPrefix: { type: 'string', pattern: '^[^{}]*$', errorMessage: 'must not hold { or } with cluster: Redis would hash keys by the prefix\'s braces, not by the {tag} that keeps a call\'s keys in one slot, and every call with several keys would fail CROSSSLOT' }
      }
    }
  }
})

export const StoreConfig = Type.Union([MemoryStoreConfig, RedisStoreConfig], {
  errorMessage: 'must be { type: memory, ... } or { type: redis, url | sentinels | cluster, ... }'
})

export const Stores = Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), StoreConfig, {
  additionalProperties: false,
  description: 'Named stores plugins refer to by name. "memory" always exists (per process, default bounds).'
})

/** What a plugin declares for consumers: its credential format and its metadata entry. */
export interface ConsumerParts { readonly name: string, readonly credentials?: { readonly schema: TSchema }, readonly consumerMetadata?: TSchema }

/**
 * `consumers:`. Loading checks metadata and credentials against the plugins it finds
 * (check-platform.ts); the schema for editors, given the built-in `plugins`, also spells out theirs.
 */
export function consumersSchema (plugins: readonly ConsumerParts[] = []) {
  const byPlugin = (description: string, pick: (p: ConsumerParts) => TSchema | undefined) => {
    const entries = plugins.flatMap(p => { const s = pick(p); return s === undefined ? [] : [[p.name, Type.Optional(s)] as const] })
    return entries.length === 0
      ? Type.Record(Type.String(), Type.Unknown(), { description })
      : Type.Object(Object.fromEntries(entries), { additionalProperties: true, description })
  }
  return Type.Array(Type.Object({
    id: Type.String({ minLength: 1, description: 'Stable identifier: logged, sent upstream (x-consumer-id), used by rate limits.' }),
    groups: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Groups for access control (acl).' })),
    metadata: Type.Optional(byPlugin('Free-form values plugins may read (e.g. per-consumer rate limits).', p => p.consumerMetadata)),
    credentials: Type.Optional(byPlugin('Keyed by auth plugin name, each in that plugin\'s credential format.', p => p.credentials?.schema))
  }, closed), { description: 'Who may call your APIs: auth plugins resolve requests to these.' })
}
