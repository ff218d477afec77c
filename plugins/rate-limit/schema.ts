import type { Static } from '@sinclair/typebox'
import { StoreName, Type } from '../../src/index.ts'

/** The longest window, and the longest a token bucket may take to fill: a year. */
export const MAX_WINDOW_MS = 365 * 86_400_000

// RateLimit-Policy's w is whole seconds, so windows are whole seconds, minutes, hours or days.
// explain: the config loader adds to errorMessage what a value written otherwise (1 min, 1.5m, 60) is written as.
const Window = Type.Union([
  Type.Integer({ minimum: 1000, maximum: MAX_WINDOW_MS, multipleOf: 1000 }),
  Type.String({ pattern: '^[1-9]\\d*(s|m|h|d)$', maxMs: MAX_WINDOW_MS })
], { errorMessage: 'must be a whole number of seconds, minutes, hours or days up to 365d, e.g. 1s, 10m, 1d (or milliseconds, a multiple of 1000)', explain: 'wholeDuration' })

/** RFC 9651's Integer has at most 15 digits: the most q and r can say. */
export const MAX_REQUESTS = 999_999_999_999_999

const Algorithm = Type.Union([Type.Literal('sliding-window'), Type.Literal('token-bucket'), Type.Literal('fixed-window')], {
  errorMessage: 'must be sliding-window, token-bucket or fixed-window'
})

const KeyPart = Type.String({
  pattern: '^(consumer|ip|route|header:[!#$%&\'*+.^_`|~0-9A-Za-z-]+|claim:[^\\s]+)$',
  errorMessage: 'must be consumer, ip, route, header:<name> or claim:<name>'
})

const BY_PARTS = 'What a counter is kept per (combined when several): consumer (req.consumer.id), ip (client address), route (route name), ' +
  'header:<name> (the client\'s header), claim:<name> (req.locals.claims.<name>, set by an auth plugin). A part the request lacks or has empty is replaced by the client IP.'
const by = (options: { description: string, default?: string[] }) => Type.Array(KeyPart, { minItems: 1, uniqueItems: true, ...options })

const Requests = Type.Integer({ minimum: 1, maximum: MAX_REQUESTS, description: 'Requests allowed per window, at most one per microsecond of it.' })
const Burst = Type.Integer({ minimum: 1, maximum: MAX_REQUESTS, description: 'token-bucket only: the bucket size, how many requests may come at once; the bucket must fill within 365 days. Default: requests.' })

export const LimitSchema = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', errorMessage: 'must be 1-64 letters, digits, _ . or -', description: 'Names the policy in RateLimit headers; limits of the same name and key share a counter across routes.' }),
  requests: Requests,
  window: Type.Union([Window], { description: 'The period requests are counted over, e.g. 1s, 1m, 1d.' }),
  by: Type.Optional(by({ description: `${BY_PARTS} Default: the plugin's by.` })),
  algorithm: Type.Optional(Type.Union([Algorithm], { description: 'Overrides the plugin\'s algorithm for this limit.' })),
  burst: Type.Optional(Burst)
}, { additionalProperties: false })

export const RateLimitSchema = Type.Object({
  store: Type.Optional(StoreName({ default: 'memory', description: 'Where counters live: a store under stores: (redis to share limits between instances). Default memory.' })),
  limits: Type.Array(LimitSchema, { minItems: 1, description: 'Every limit a request must pass, decided together: a request one limit rejects is not counted by the others (on Redis Cluster, by those with the same first key part).' }),
  by: Type.Optional(by({ default: ['consumer'], description: `Default key parts of every limit. ${BY_PARTS} Default [consumer].` })),
  algorithm: Type.Optional(Type.Union([Algorithm], { default: 'sliding-window', description: 'sliding-window (default: two counters, weighted), token-bucket (GCRA) or fixed-window.' })),
  onStoreError: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')], {
    default: 'allow', errorMessage: 'must be allow or deny', description: 'When the store fails or times out: allow the request (no RateLimit headers) or deny it with 503. Default allow.'
  })),
  headers: Type.Optional(Type.Union([Type.Literal('ietf'), Type.Literal('legacy'), Type.Literal('both'), Type.Literal('none')], {
    default: 'ietf', errorMessage: 'must be ietf, legacy, both or none', description: 'ietf: RateLimit-Policy and RateLimit; legacy: X-RateLimit-Limit/Remaining/Reset. Default ietf.'
  })),
  ipv6Prefix: Type.Optional(Type.Integer({
    minimum: 1, maximum: 128, default: 64,
    description: 'The ip part (and the client IP standing in for a missing part) of an IPv6 client: its network of this many bits, 128 for the address itself. Default 64. IPv4-mapped addresses count as IPv4.'
  })),
  localPrecheck: Type.Optional(Type.Boolean({
    default: true, description: 'Remember keys the store said are over their limit, and reject them locally until they may pass again: no call to a shared store, and on a memory store such a key stays rejected if its counter is evicted. Default true.'
  }))
}, { additionalProperties: false })

/** consumers[].metadata.rate-limit: per limit name, other values, or false to exempt the consumer. */
export const ConsumerOverridesSchema = Type.Record(Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$' }), Type.Union([
  Type.Literal(false),
  Type.Object({
    requests: Type.Optional(Requests),
    window: Type.Optional(Window),
    burst: Type.Optional(Burst),
    algorithm: Type.Optional(Algorithm)
  }, { additionalProperties: false })
], { errorMessage: 'must be false (no such limit for this consumer) or { requests, window, burst, algorithm }' }), {
  additionalProperties: false,
  errorMessage: 'is not a limit name (letters, digits, _ . -)',
  description: 'Per-consumer values of this consumer\'s limits, keyed by limit name.'
})

export type RateLimitConfig = Static<typeof RateLimitSchema>
export type LimitConfig = Static<typeof LimitSchema>
export type ConsumerOverrides = Static<typeof ConsumerOverridesSchema>
