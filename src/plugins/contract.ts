import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { Duplex, Readable } from 'node:stream'
import type { Static, TSchema } from '@sinclair/typebox'
import type { Logger } from 'pino'
import type { Consumer, ConsumerCredential, Consumers } from '../consumers/consumers.ts'
import type { PluginMetrics } from '../metrics/plugin-metrics.ts'
import type { Store } from '../stores/store.ts'
import type { PluginAdmin } from './admin-routes.ts'
import type { TraceContext } from '../proxy/trace-context.ts'

/** Headers as plugins see them: lower-case names, mutable. */
export type HeaderMap = Record<string, string | string[] | undefined>

/**
 * A response a plugin sends instead of proxying (auth failure, cache hit, rate limit...). The
 * gateway copies what it needs and never changes it: a plugin may send one reply many times.
 */
export interface PluginReply {
  status: number
  headers?: HeaderMap
  /** A string or Buffer is sent as is; anything else is sent as JSON. */
  body?: unknown
}

/** The request as it travels through a route's pipeline towards the upstream. */
export interface GatewayRequest {
  /** The x-request-id sent upstream and echoed to the client. */
  readonly id: string
  readonly method: string
  /** The normalized path the route matched (no query). */
  readonly path: string
  /** The query string sent upstream, with its leading `?`, or ''. Plugins may change it (key-auth's hideCredentials). */
  query: string
  /** Path params of the route's match (`:id`, and `*` for the rest of a prefix match). */
  readonly params: Readonly<Record<string, string>>
  /** The headers that will be sent upstream (hop-by-hop headers already removed). Mutate to change them. */
  readonly headers: HeaderMap
  /** The headers exactly as the client sent them. */
  readonly clientHeaders: IncomingHttpHeaders
  /** The client's address, after trustProxy is applied. */
  readonly clientIp: string
  /**
   * The client's certificate (server.tls.clientAuth), only when it verified against the CA: its
   * subject (e.g. { CN: 'billing', O: 'Example' }), SHA-256 fingerprint, serial number and expiry.
   */
  readonly clientCertificate: ClientCertificate | undefined
  /** W3C trace context: the caller's trace id (or a new one) and the gateway's own span id, sent upstream as traceparent. */
  readonly trace: TraceContext
  /** performance.now() when the gateway took the request. */
  readonly startedAt: number
  readonly route: { readonly name: string, readonly upstream: string }
  /** The path (without query) that will be requested from the upstream. Plugins may change it. */
  upstreamPath: string
  /**
   * Who is calling, once an auth plugin has recognised them (undefined before, or for anonymous
   * access). Later plugins (acl, rate-limit) and the access log read it. Once a hook sets it, the
   * gateway replaces every identity header (x-consumer-*, x-anonymous-consumer, also with `_`)
   * with this consumer's x-consumer-id and x-consumer-groups before the next plugin runs (see
   * setIdentity).
   */
  consumer: Consumer | undefined
  /**
   * Per-request space for plugins to hand data to later plugins. `claims`: the verified JWT claims
   * (an object), set by jwt-auth.
   */
  readonly locals: Record<string, unknown>
  /**
   * Headers the request phase decides for the response this request gets (a rate limit's quota,
   * say): the upstream's, a plugin's reply or the gateway's 502, 503 or 504. Written after every
   * onResponse, over headers of the same names: response plugins never see them (the cache does not
   * store one client's quota). Lower-case names; undefined values are skipped. Cheaper than an
   * onResponse that writes them.
   */
  readonly extraResponseHeaders: HeaderMap
  /**
   * Whether the request carries a body: a Content-Length other than 0, a Transfer-Encoding, or over
   * HTTP/2 a stream its headers did not end (HTTP/2 needs no Content-Length).
   */
  readonly hasBody: boolean
  /**
   * An upgrade request (a WebSocket's): answered by a 101 and a tunnel, or by a refusal that only
   * an upgrade gets, never by a response for plain requests to the same URL.
   */
  readonly upgrade: boolean
  /**
   * True once nothing more is wanted from the plugins for this request: the client left, the
   * gateway answered it alone (a timeout's 504), or its response ended. Slow work queued for it
   * (a password check waiting for a turn) may then be skipped.
   */
  readonly ended: boolean
  /**
   * The raw Node request, for what the contract does not cover. Do not consume its body. Over HTTP/2
   * an Http2ServerRequest: the same headers (plus pseudo-headers such as :authority), url and method.
   */
  readonly raw: IncomingMessage
  /**
   * Sends the request body upstream through a stream (decompression, a size limit...). Streams added
   * by later-running plugins sit closer to the upstream. Remove content-length if the length changes.
   * Such a body is streamed, never buffered for a retry. A stream that fails with RequestRejected
   * answers the client with its reply, any other failure with 400 bad_body (through the whole response
   * phase, the connection then closed), if no response has begun; the upstream request is aborted.
   * One whose own code throws (its transform, a write, a read), or that fails with a value Node
   * cannot handle (a revoked Proxy), is the plugin's failure: 500 plugin_error.
   */
  pipeBodyThrough (stream: Duplex): void
  /**
   * Sends a separate bodiless request for this request's upstream path and query to the route's
   * upstream (its own target pick, the route's Host rule and timeouts, no retries), outside the
   * client's exchange: for background work such as a cache revalidation. Rejects when no target
   * is healthy or the upstream fails; the caller must consume or destroy the body.
   */
  subrequest (method: string, headers: HeaderMap): Promise<SubrequestResponse>
}

/** What subrequest() resolves with. */
export interface SubrequestResponse {
  readonly status: number
  /** End-to-end headers, lower-case names. */
  readonly headers: HeaderMap
  readonly body: Readable
  /** Its body ends when the connection closes: see GatewayResponse.closeDelimited (a cache must not keep it). */
  readonly closeDelimited: boolean
}

/** An upstream target, as the upstream-try hooks see it. */
export interface UpstreamTarget {
  /** Its origin, e.g. http://10.0.0.5:3000. */
  readonly url: string
  /** host[:port], the Host header sent when the route does not preserve the client's. */
  readonly host: string
}

/** A verified client certificate, as GatewayRequest.clientCertificate shows it. */
export interface ClientCertificate {
  readonly subject: Readonly<Record<string, string | string[]>>
  readonly fingerprint256: string
  readonly serialNumber: string
  readonly validTo: string
}

/** The response on its way back to the client, before its status line and headers are written. */
export interface GatewayResponse {
  status: number
  /** Response headers (hop-by-hop headers already removed). Mutate to change them. */
  readonly headers: HeaderMap
  /** True when the response came from the upstream, false when a plugin or the gateway produced it. */
  readonly fromUpstream: boolean
  /**
   * The upstream's body ends when its connection closes (no Content-Length, not chunked: RFC 9112
   * 6.3). Its end cannot be told from a cut (undici takes a reset for the end), so a cache must not keep it.
   */
  readonly closeDelimited: boolean
  /**
   * The body of a plugin's reply given as a Buffer: the very object the plugin gave (a cache's
   * stored body is the same object on every hit, so that work on it can be kept), until a stream
   * is added with pipeThrough; undefined for an upstream's body and any other reply. A response
   * hook may set another Buffer in its place (and content-length with it), which is then sent
   * through the streams added after. Never change a Buffer's bytes once replied or set.
   */
  replyBody: Buffer | undefined
  /**
   * Sends `body` in place of the response's body, whatever it is (the upstream's, a reply's), and
   * sets content-length to its length. Streams added so far are dropped (they were the replaced
   * body's); streams added after get `body`, and replyBody is `body` until one is. The upstream's
   * body is not waited for: `body` goes out at once, the upstream's is read and dropped meanwhile
   * (its try aborted past 64 KiB, or once the response is sent), and whatever becomes of it (a
   * stall, a reset) is not the response's: a failure is logged and counted against the target, as
   * a 5xx status is, never an error for the client. For a stored response sent for an upstream's
   * error (stale-if-error) or 304.
   */
  replaceBody (body: Buffer): void
  /**
   * Sends the body through a stream (compression, capture for caching...). Streams added by
   * later-running plugins sit closer to the client. Remove content-length if the length changes.
   * One that fails, or whose own code throws, is the plugin's failure (500 plugin_error before its
   * first byte, a cut response after), unless it fails with UpstreamBodyInvalid.
   */
  pipeThrough (stream: Duplex): void
}

type Maybe<T> = T | Promise<T>

/** What a plugin's setup returns: the hooks it wants for one route. */
export interface PluginHandlers {
  /** Request phase, in pipeline order. Return a reply to answer without proxying. */
  onRequest?: (req: GatewayRequest) => Maybe<PluginReply | undefined | void>
  /** Response phase, in reverse pipeline order (the first plugin sees the response last). */
  onResponse?: (res: GatewayResponse, req: GatewayRequest) => Maybe<void>
  /**
   * Observers (tracing): called synchronously, never awaited; a throw is logged, the request goes on.
   * A route none of whose plugins has them pays nothing for them.
   * onUpstreamTry: just before each try is sent to a target (the first, then each retry; `attempt`
   * counts from 1). req.headers may still be changed for this try (a per-try traceparent).
   */
  onUpstreamTry?: (req: GatewayRequest, target: UpstreamTarget, attempt: number) => void
  /**
   * That try is over: answered (`status`; its body read, or drained for a retry; 101 for an upgrade),
   * or failed (`error`: refused, reset, timed out, aborted; with `status` too when the body broke).
   */
  onUpstreamTryEnd?: (req: GatewayRequest, status: number | undefined, error: Error | undefined) => void
  /**
   * The request is over (its last byte sent, or the client gone), however it was answered (the
   * upstream, a plugin, a gateway error): `status` as the access log has it (499: the client left);
   * `cut`, its `error` too when the gateway cut the answer short (`upstream_broken`,
   * `client_send_timeout`, `request_timeout`, `shutdown`...), undefined otherwise.
   */
  onFinished?: (req: GatewayRequest, status: number, cut: string | undefined) => void
  /** Called when the runtime that owns this route is disposed (after a reload, or at shutdown). */
  dispose?: () => Maybe<void>
}

/** What setup receives besides the plugin's own config; `C`, a credential as the plugin's credentials.schema types it. */
export interface PluginSetupContext<C = unknown> {
  readonly routeName: string
  /** The route's `match.path` as configured (`/users/:id`, `/api/*`): a low-cardinality name for its requests. */
  readonly routePath: string
  /** The names of the route's path params (`id` for `/users/:id`, `*` for the rest of a prefix match). */
  readonly routeParams: readonly string[]
  /**
   * The route's `match.methods`, upper-cased as it matches them; undefined without (every method):
   * for a plugin to warn of requests the route never takes (cors: preflights, without OPTIONS).
   */
  readonly routeMethods: readonly string[] | undefined
  /**
   * How long each async onRequest and onResponse may take (server.pluginTimeout, more than 0), ms:
   * past it the request is answered 504 and whatever the hook does later is ignored. A hook that
   * waits (a fetch, another request's answer) bounds the wait below it, or its setup refuses a
   * config whose waits could reach it (the cache: collapseTimeout).
   */
  readonly hookTimeoutMs: number
  readonly log: Logger
  /**
   * A store by its name under `stores:` (default `memory`, which always exists). Stores belong to
   * the process and outlive reloads. Name it in the config with the StoreName schema, so that an
   * unknown name is a config error at its line.
   */
  store (name?: string): Store
  /** Every consumer of the config. */
  readonly consumers: Consumers
  /** The credentials consumers hold for this plugin (consumers[].credentials.<plugin name>), validated against `credentials.schema`. */
  readonly credentials: ReadonlyArray<ConsumerCredential<C>>
  /** Counters, histograms and gauges in the gateway's registry (/metrics); the gateway's own names are refused. */
  readonly metrics: PluginMetrics
  /** Admin endpoints under /plugins/<plugin name>/ on the admin listener. */
  readonly admin: PluginAdmin
  /**
   * One value per plugin and key for the whole config, created by the first route's setup and
   * shared by the others (a key set, a purge endpoint). Disposed (its `dispose()`, if any) with the config;
   * its `inService()`, if any, is called once the config goes into service (a config built but never put
   * in service, a reload called off, is only disposed): the place for what must not happen before;
   * its `outOfService()`, if any, once a reload puts another config in its place (in the same turn,
   * its requests in flight still running).
   */
  shared<T> (key: string, create: () => T): T
  /**
   * Every config of the plugin named `plugin` (this one or another) in this config: the top-level
   * one (even where routes turn it off), then each route's own. For what one route must know of
   * the others' (the headers any jwt-auth forwards claims in, removed on every route with auth).
   * Deep-frozen: the very objects each route's setup gets, shared by every plugin.
   */
  configsOf (plugin: string): readonly unknown[]
  /**
   * Request headers that carry a credential on this route (a key under a header name of the
   * config's choosing): access-log lines with headers (logging.headers) show them as [redacted].
   * Authorization, Cookie and the usual API-key names always are.
   */
  redactHeaders (...names: string[]): void
}

/** How consumers hold a credential for an auth plugin. */
export interface CredentialSpec<C extends TSchema = TSchema> {
  /** TypeBox schema of `consumers[].credentials.<plugin name>`. */
  readonly schema: C
  /**
   * The values that identify a credential (an API key's hash, a user name): two consumers with a
   * value in common are a config error. Default: the whole credential, compared as JSON.
   */
  readonly identities?: (credential: Static<C>) => readonly string[]
}

export interface PluginDefinition<S extends TSchema = TSchema, C extends TSchema = TSchema> {
  /** The key used under a route's `plugins:`. */
  readonly name: string
  /**
   * Higher runs earlier in the request phase. Bands: 3000+ access control (ip filter, cors),
   * 1000-2999 authentication, 990 acl, 900-989 rate limiting, 800-899 request transforms,
   * 100-799 caching and other traffic control, below 100 response transforms and observers.
   */
  readonly priority: number
  /** TypeBox schema of the plugin's config; validated at load time with positions. */
  readonly schema: S
  /** For auth plugins: the credential format consumers use for this plugin. */
  readonly credentials?: CredentialSpec<C>
  /**
   * For plugins that read per-consumer settings (rate-limit overrides): the TypeBox schema of
   * `consumers[].metadata.<plugin name>`, validated at load with positions like the plugin's own config.
   */
  readonly consumerMetadata?: TSchema
  /**
   * Checks a schema cannot express (an address range, a regular expression, a template), run at
   * load after the schema's, so that each problem is reported at its key with file:line:col, by
   * `portcullis validate` as by a start or a reload. `route`: the route whose plugins: holds this
   * config (its params, its plugins: PluginCheckRoute). A top-level plugins: config is checked with undefined,
   * then with each route that uses it: what only a route finds is reported at the top-level key.
   */
  readonly check?: (config: Static<S>, route: PluginCheckRoute | undefined) => readonly PluginConfigProblem[]
  /**
   * What a route's config of the plugin, which replaces the top-level one whole (never merged),
   * drops of it that guarded the route (a deny entry, a lower limit): each a phrase of the warning
   * logged at load and printed by `portcullis validate`. Both configs validated, defaults applied.
   */
  readonly replacing?: (top: Static<S>, route: Static<S>) => readonly string[]
  /**
   * The request headers the plugin, with `config`, sets from what it verified and the upstream may
   * trust (jwt-auth's forwardClaims headers). Asked at config load for every config of the plugin
   * (the top-level one, even where routes turn it off, and each route's): on every route, from any
   * peer, the gateway removes what the client sent under any of these names (also with `_` for
   * `-`) before the first plugin runs, as it does the identity headers (x-consumer-*, x-anonymous-consumer).
   * `config` is validated, defaults applied, as setup's; anything but an array of header names, or
   * a throw, is a config problem at the plugin's key.
   */
  readonly vouchedHeaders?: (config: Static<S>) => readonly string[]
  /**
   * What a use of the plugin, valid, is likely not meant to do (a cache that never stores, an auth
   * plugin that admits no one): each message a warning at the plugin's key (`routes[i].plugins.<name>`,
   * or `plugins.<name>` for a top-level config, asked once per route that uses it), logged at start
   * and reload and printed by `portcullis validate`. Synchronous, pure and quick (it runs at every
   * load, with no time limit): `config` validated, defaults applied, as setup's, given (as ctx's
   * configs) as a deep-frozen copy. Messages are about the route without naming it: the gateway
   * names the route(s). At most 20 per route are kept, each cut to 1,000 characters, control
   * characters escaped. A throw, or anything but an array of strings, is a warning naming the
   * plugin, never a failed load.
   */
  readonly warnings?: (config: Static<S>, ctx: PluginWarningsContext) => readonly string[]
  /**
   * Runs once per route at config load (never per request); returns the route's hooks. `config` is
   * deep-frozen (changing it throws in strict mode): a top-level config is one object for every route.
   */
  readonly setup: (config: Static<S>, ctx: PluginSetupContext<Static<C>>) => Maybe<PluginHandlers>
}

/** The route a plugin's config is checked for (PluginDefinition.check). */
export interface PluginCheckRoute {
  /** The params of its match.path. */
  readonly params: readonly string[]
  /**
   * Every plugin it uses (top-level ones included, this one too) in the order they run, each with
   * its config as written: another plugin's may be invalid (reported at its own key), so read it warily.
   */
  readonly plugins: ReadonlyArray<{ readonly name: string, readonly config: unknown }>
  /** Every config of the plugin `plugin` in the whole config, as PluginSetupContext.configsOf but as written, so read them warily too. */
  configsOf (plugin: string): readonly unknown[]
}

/** What a plugin's `warnings` hook is told of the route that uses it. */
export interface PluginWarningsContext {
  readonly routeName: string
  /** Every plugin the route uses (top-level ones included, this one too) in the order they run, each with its config as validated. */
  readonly plugins: ReadonlyArray<{ readonly name: string, readonly config: unknown }>
  /** Every consumer of the config, with the credentials they hold for each plugin (credentialsFor). */
  readonly consumers: Consumers
}

/** What a plugin's check found: `path` within the plugin's config (`['deny', 0]`). */
export interface PluginConfigProblem {
  readonly path: ReadonlyArray<string | number>
  readonly message: string
}
