import { ByteSize, Duration, LongDuration, StoreName, TOKEN, Type, type Static } from '../../src/index.ts'

const HeaderName = Type.String({ pattern: TOKEN })
/** An RFC 8941 sf-token: what Cache-Status (RFC 9211 2) takes as a cache's name without quoting it. */
const SF_TOKEN = '^[A-Za-z*][!#$%&\'*+.^_`|~0-9A-Za-z:/-]*$'

export const CacheSchema = Type.Object({
  store: Type.Optional(StoreName({ description: 'Where responses are kept: a store under stores:. Default memory.' })),
  name: Type.Optional(Type.String({
    pattern: SF_TOKEN,
    errorMessage: 'must be a token (RFC 8941): a letter or "*", then letters, digits and !#$%&\'*+-.^_`|~:/',
    description: 'The cache name in Cache-Status, a token (a letter first). Default Portcullis.'
  })),
  maxObjectSize: Type.Optional(ByteSize({ minimum: 1, description: 'Largest body stored (bytes, or a size such as 512KiB); larger responses are proxied and not kept. Default 1MiB.' })),
  methods: Type.Optional(Type.Array(Type.Union([Type.Literal('GET'), Type.Literal('HEAD')]), {
    uniqueItems: true, description: 'Methods answered from the cache (HEAD is answered from a stored GET). Default [GET, HEAD].'
  })),
  statuses: Type.Optional(Type.Array(Type.Integer({ minimum: 200, maximum: 599 }), {
    uniqueItems: true, description: 'Statuses that may be stored (the RFC rules apply on top). Default 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501.'
  })),
  defaultTtl: Type.Optional(Type.Union([LongDuration], {
    description: 'Freshness given to a response the upstream sent without any (no max-age, s-maxage, Expires or Last-Modified) whose status is cacheable by default. Default: off (not stored).'
  })),
  heuristicMax: Type.Optional(Type.Union([LongDuration], { description: 'Cap on the Last-Modified heuristic (10% of the age of Last-Modified). Default 1d.' })),
  staleIfError: Type.Optional(Type.Union([LongDuration], {
    description: 'Serve a stored response up to this long past its freshness when the upstream fails (5xx, unreachable, timeout), as if it had sent stale-if-error (the larger window wins). Never for must-revalidate, proxy-revalidate, s-maxage or no-cache. Default: off (only the upstream\'s stale-if-error).'
  })),
  staleWhileRevalidate: Type.Optional(Type.Union([LongDuration], {
    description: 'Serve a stored response up to this long past its freshness at once, revalidating it in the background, as if the upstream had sent stale-while-revalidate (the larger window wins). Same exceptions. Default: off.'
  })),
  keepStale: Type.Optional(Type.Union([LongDuration], {
    description: 'How long a stale entry with a validator (ETag, Last-Modified) is kept for revalidation past its freshness and stale windows. Default 1h.'
  })),
  collapseTimeout: Type.Optional(Type.Union([Duration], {
    description: 'How long a request waits for another in-flight request for the same key before going upstream itself. Less than half of server.pluginTimeout (a request may wait twice this, within its onRequest), less 3 × the commandTimeout of a Redis store (the reads a wait may end with), else a setup error. Default 5s (less, to fit a shorter server.pluginTimeout).'
  })),
  key: Type.Optional(Type.Object({
    host: Type.Optional(Type.Boolean({ description: 'Include the Host in the key, and the X-Forwarded-Host sent upstream when it differs (the scheme sent upstream is always in it). Default true.' })),
    query: Type.Optional(Type.Object({
      include: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Only these query parameters are part of the key (names compared percent-decoded). A request with another parameter an upstream may read as one of them (another case, id[], a ; in it) skips the cache. Default: all.' })),
      ignore: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Query parameters left out of the key (utm_source...; names compared percent-decoded). One with a ; in it makes the request skip the cache. Default none.' }))
    }, { additionalProperties: false, description: 'Query parameters in the key, sorted by name. Default: all of them.' })),
    headers: Type.Optional(Type.Array(HeaderName, { description: 'Request headers whose values are part of the key, as they go upstream (x-consumer-id as an auth plugin set it, not as the client sent it). Default none.' }))
  }, { additionalProperties: false, description: 'What identifies a stored response besides Vary. Method is not part of it: HEAD uses the stored GET.' })),
  bypass: Type.Optional(Type.Object({
    headers: Type.Optional(Type.Array(HeaderName, { description: 'A request with any of these headers skips the cache (neither read nor stored).' })),
    cookies: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'A request with any of these cookies skips the cache.' }))
  }, { additionalProperties: false, description: 'Requests that skip the cache. Default none.' })),
  cacheAuthorized: Type.Optional(Type.Boolean({
    description: 'Use the cache for requests with credentials: Authorization, or a consumer an auth plugin identified (not the anonymous one). Stored only when the response says public, s-maxage or must-revalidate. Default false: such requests skip it.'
  })),
  requestCacheControl: Type.Optional(Type.Union([Type.Literal('ignore'), Type.Literal('honor')], {
    description: 'ignore: a request\'s Cache-Control and Pragma (no-cache, max-age, min-fresh, max-stale, only-if-cached, stale-if-error) do not change what is served, as in nginx and Varnish, so reloads and clients cannot bypass the cache; its no-store still keeps its own answer out of the store. honor: RFC 9111 5.2.1, each request may ask to revalidate or go upstream. Default ignore.'
  })),
  targetedCacheControl: Type.Optional(Type.Array(HeaderName, {
    uniqueItems: true,
    description: 'Response fields whose directives this cache follows instead of Cache-Control and Expires (RFC 9213), the first present with a valid value winning, e.g. [CDN-Cache-Control]. Default none.'
  })),
  surrogateKeyHeader: Type.Optional(Type.Union([HeaderName], {
    description: 'Response header with space-separated tags to purge by (removed before the client sees it). Default Surrogate-Key.'
  }))
}, { additionalProperties: false })

export type CacheConfig = Static<typeof CacheSchema>
