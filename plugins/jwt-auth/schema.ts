import type { Static } from '@sinclair/typebox'
import { Duration, FilePath, NonEmptyKey, Type } from '../../src/index.ts'
import { SettableName } from '../shared/header-edits.ts'
import { LocationSchema } from '../shared/auth/location.ts'
import { Scalar } from '../shared/scalar.ts'
import { commonAuthOptions } from '../shared/auth/schema.ts'

export const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const
export const HMAC = ['HS256', 'HS384', 'HS512'] as const

const Url = (description: string) => Type.String({ pattern: '^https?://[^\\s]+$', errorMessage: 'must be an http:// or https:// URL', description })
const Jwk = Type.Object({ kty: Type.String() }, { additionalProperties: true, description: 'A public JWK (kty, n/e, x/y/crv...; kid and alg if the provider gives them).' })

export const DEFAULTS = {
  clockTolerance: 30_000,
  maxTokenBytes: 8192,
  cacheSize: 10_000,
  consumerClaim: 'sub',
  from: [{ header: 'authorization', scheme: 'Bearer' }],
  jwks: { timeout: 5_000, cooldown: 30_000, refresh: 600_000, maxRefresh: 86_400_000 }
} as const

/** The longest jwks durations (checkJwtAuth): far below what a Node timer can wait (24.8 days; past it, it fires at once). */
export const JWKS_MAX = { timeout: '1m', cooldown: '1d', refresh: '7d', maxRefresh: '7d' } as const

/** The shortest jwks durations (checkJwtAuth), and why: a timer or fetch below them misbehaves whatever the provider does. */
const POLLS = 'a new key is fetched on its first token anyway (unknown kid); refreshing more often polls the provider for nothing'
export const JWKS_MIN = {
  timeout: ['100ms', 'a fetch cut sooner fails however the provider answers: 503 auth_unavailable until a set is fetched'],
  refresh: ['10s', POLLS],
  maxRefresh: ['10s', POLLS]
} as const

export const JwtAuthSchema = Type.Object({
  issuer: Type.Optional(Url('The token issuer (iss). Its OIDC discovery document (<issuer>/.well-known/openid-configuration) gives the jwks_uri, unless jwksUri, keys, jwksFile or secret is set (with secret, give jwksUri for asymmetric tokens too); tokens must carry this iss.')),
  jwksUri: Type.Optional(Url('URL of the JSON Web Key Set (instead of discovery).')),
  keys: Type.Optional(Type.Array(Type.Union([Type.String({ pattern: '-----BEGIN ', errorMessage: 'must be a PEM public key or certificate' }), Jwk]), {
    minItems: 1, description: 'Static public keys: PEM (SPKI or certificate) or JWK objects.'
  })),
  jwksFile: Type.Optional(FilePath({ description: 'A JWKS file (JSON), read at load; a relative path is from the config file\'s folder.' })),
  secret: Type.Optional(Type.String({ minLength: 32, errorMessage: 'must be at least 32 characters (RFC 7518 3.2)', description: 'Shared secret for HS256/384/512 tokens; write it as ${ENV}.' })),
  audience: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    description: 'Accepted aud value(s); the token must name one. Default: aud not checked.'
  })),
  algorithms: Type.Optional(Type.Array(Type.Union([...ASYMMETRIC, ...HMAC].map(a => Type.Literal(a))), {
    minItems: 1, uniqueItems: true, description: 'Allowed alg values. Default: the asymmetric ones the keys support (all of them for remote keys), plus HS* when secret is set.'
  })),
  // RFC 6749 3.3 scope-token: what a scope claim and the 403's WWW-Authenticate scope can hold.
  scopes: Type.Optional(Type.Array(Type.String({
    pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]+$',
    errorMessage: 'must be a scope token (RFC 6749 3.3): printable ASCII, without spaces, " or \\'
  }), { description: 'Scopes the token must all have (scope: space-separated, or scp), each printable ASCII without spaces, " or \\. Missing: 403 insufficient_scope.' })),
  claims: Type.Optional(Type.Record(NonEmptyKey, Type.Union([Scalar, Type.Array(Scalar, { minItems: 1 })], { errorMessage: 'must be a string, a number, true or false, or a list of them' }), {
    additionalProperties: false,
    errorMessage: 'is not a valid name: it must not be empty',
    description: 'Required claim values: the claim must equal the value (or one of the listed values); an array claim must contain it.'
  })),
  clockTolerance: Type.Optional(Type.Union([Duration], { description: 'Leeway for exp, nbf and iat. Default 30s, at most 5m.' })),
  requireExp: Type.Optional(Type.Boolean({ default: true, description: 'Refuse tokens without exp. Default true.' })),
  maxTokenBytes: Type.Optional(Type.Integer({ minimum: 256, default: DEFAULTS.maxTokenBytes, description: 'Longer tokens are refused before any decoding. Default 8192.' })),
  from: Type.Optional(Type.Array(LocationSchema, { minItems: 1, description: 'Where the token is read, first found wins. Default [{ header: authorization, scheme: Bearer }].' })),
  forwardClaims: Type.Optional(Type.Record(NonEmptyKey, SettableName, {
    additionalProperties: false,
    errorMessage: 'is not a valid name: it must not be empty',
    description: 'claim: header sent upstream (e.g. email: x-user-email). Clients cannot send these headers themselves: removed from every request on every route, whichever jwt-auth of the config names them. Not an identity header (x-consumer-*, x-anonymous-consumer), Host, a hop-by-hop or framing header, a request field clients send (Content-*, Accept*, Cookie, Authorization, Origin, Range, If-*, Sec-*, User-Agent, Via...), or one an auth plugin reads credentials from.'
  })),
  consumerClaim: Type.Optional(Type.String({ minLength: 1, default: DEFAULTS.consumerClaim, description: 'The claim naming the consumer: a consumer with that id, else one made from the claim. Default sub.' })),
  groupsClaim: Type.Optional(Type.String({ minLength: 1, description: 'A claim (array or space-separated string) giving the groups of consumers not under consumers:, for acl.' })),
  requireConsumer: Type.Optional(Type.Boolean({ default: false, description: 'Refuse tokens whose consumerClaim names no consumer under consumers:. Default false.' })),
  optional: Type.Optional(Type.Boolean({ default: false, description: 'Let requests without a token through with no consumer (a bad token is still refused). Default false.' })),
  hideCredentials: Type.Optional(Type.Boolean({ default: false, description: 'Remove the token (header or query parameter) before forwarding. Default false.' })),
  cacheSize: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000, default: DEFAULTS.cacheSize, description: 'Verified tokens kept (keyed by a SHA-256 of the token, never past exp), in one cache for the routes whose settings are the same but for from, realm, optional, anonymous, hideCredentials and maxTokenBytes; it grows with the tokens kept. 0 turns the cache off. At most 10000000. Default 10000.' })),
  jwks: Type.Optional(Type.Object({
    timeout: Type.Optional(Type.Union([Duration], { description: 'Discovery and JWKS fetch timeout. Default 5s, at least 100ms, at most 1m.' })),
    cooldown: Type.Optional(Type.Union([Duration], { description: 'Least time between two fetches (unknown kid, retry after a failure). Default 30s, at most 1d.' })),
    refresh: Type.Optional(Type.Union([Duration], { description: 'Background refresh when the response has no Cache-Control max-age. Default 10m, at least 10s, at most 7d.' })),
    maxRefresh: Type.Optional(Type.Union([Duration], { description: 'Longest time between refreshes, whatever max-age says. Default 24h, at least 10s and cooldown, at most 7d.' }))
  }, { additionalProperties: false, description: 'Remote key set fetching (issuer or jwksUri).' })),
  ...commonAuthOptions
}, {
  additionalProperties: false,
  anyOf: ['issuer', 'jwksUri', 'keys', 'jwksFile', 'secret'].map(key => ({ required: [key], properties: { [key]: {} } })),
  errorMessage: 'needs keys to verify tokens with: issuer (OIDC discovery), jwksUri, keys, jwksFile or secret'
})

export type JwtAuthConfig = Static<typeof JwtAuthSchema>

/**
 * The headers a config forwards claims in (forwardClaims), which the gateway removes from every
 * client's request (PluginDefinition.vouchedHeaders). Read warily: route checks see other routes'
 * configs as written, perhaps invalid.
 */
export function forwardedHeaders (config: unknown): string[] {
  const claims = typeof config === 'object' && config !== null ? (config as { forwardClaims?: unknown }).forwardClaims : undefined
  return typeof claims === 'object' && claims !== null ? Object.values(claims).filter((h): h is string => typeof h === 'string') : []
}
