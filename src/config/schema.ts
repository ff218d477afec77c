import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { ByteSize } from './byte-size.ts'
import { Duration, MAX_DURATION_MS } from './duration.ts'
import { TOKEN } from './names.ts'
import { consumersSchema, Stores, type ConsumerParts } from './store-schema.ts'
import { Balance, CircuitBreaker, HashOn, HealthCheck, Passive, Retries, TargetResolve, WhenAllUnhealthy } from './upstream-schema.ts'

// Every object is closed (additionalProperties: false) so a typo is an error, never silently ignored.
const closed = { additionalProperties: false } as const

// An address or a name as Node's listen takes it: `[::1]` would be looked up as a name (and fail at start).
const HOST = { pattern: '^[^\\s\\[\\]]+$', errorMessage: 'must be an IP address or a host name, without spaces; an IPv6 address without brackets (::1, not [::1])' } as const
// `host` may be left out: validation fills in the default (Ajv useDefaults), so code always has one.
const listen = (defaultHost: string) => Type.Object({
  host: Type.String({ ...HOST, default: defaultHost, description: `Interface to bind, e.g. 0.0.0.0, 127.0.0.1 or :: (IPv6, no brackets). Default ${defaultHost}.` }),
  port: Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port; 0 picks a free one.' })
}, closed)

/** A token bucket: `burst` events at once, refilled at `perSecond`; past it, the connection is cut. */
const bucket = (what: string, burst: number, perSecond: number, description: string) => Type.Object({
  burst: Type.Optional(Type.Integer({ minimum: 1, description: `${what} allowed at once. Default ${burst}.` })),
  perSecond: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: `${what} allowed per second once the burst is spent. Default ${perSecond}.` }))
}, { ...closed, description })

const Http2 = Type.Object({
  // No `default` for host inside this union (Ajv applies none there): http2Limits fills it in.
  h2c: Type.Optional(Type.Object({
    listen: Type.Object({
      host: Type.Optional(Type.String({ ...HOST, description: 'Interface to bind. Default 0.0.0.0.' })),
      port: Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port; 0 picks a free one.' })
    }, closed)
  }, {
    ...closed, description: 'Cleartext HTTP/2 with prior knowledge (no Upgrade: h2c, no HTTP/1.1) on a port of its own, for clients and load balancers that speak h2c. Same routes, plugins and limits as server.listen.'
  })),
  maxConcurrentStreams: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1, description: 'Requests (streams) one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with REFUSED_STREAM. Default 100.' })),
  maxHeaderListSize: Type.Optional(Type.Integer({ minimum: 1024, maximum: 2 ** 31 - 1, description: 'Largest request header list, in bytes as HTTP/2 counts them (name + value + 32 per field); a larger one is refused (stream reset) before routing; one sent before the client acknowledged the SETTINGS closes the connection (GOAWAY ENHANCE_YOUR_CALM). Default 16384, like HTTP/1.1\'s header size limit.' })),
  maxStreamingUploads: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1, description: 'Requests of one connection whose body is still arriving (streamed: longer than the upstream\'s requestBuffer, or of unknown length) that may hold, or wait for, an upstream connection at once; the others wait for a slot within the upstream\'s queue.timeout, then 503 upload_slots_busy, so that one connection\'s streams cannot take a target\'s every connection. Default 8.' })),
  rapidReset: Type.Optional(bucket('Requests a client cancels (RST_STREAM) before their response ends', 100, 10,
    'Rapid-reset protection (CVE-2023-44487): a connection whose client cancels requests faster than this is sent GOAWAY (ENHANCE_YOUR_CALM) and closed.')),
  settingsFlood: Type.Optional(bucket('SETTINGS frames from a client', 20, 2,
    'Settings-flood protection: a connection whose client sends SETTINGS frames faster than this is sent GOAWAY (ENHANCE_YOUR_CALM) and closed.'))
}, closed)

const Server = Type.Object({
  listen: listen('0.0.0.0'),
  trustProxy: Type.Optional(Type.Union([Type.Boolean(), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    errorMessage: 'must be true, false, or a list of trusted proxy addresses/CIDRs',
    description: 'Whether to trust X-Forwarded-* from the client: false (default), true (any peer), or a list of addresses/CIDRs.'
  })),
  traceContext: Type.Optional(Type.Union([Type.Literal('continue'), Type.Literal('trustedProxies'), Type.Literal('restart')], {
    errorMessage: 'must be continue, trustedProxies or restart',
    description: 'Whose W3C trace context (traceparent, tracestate, baggage) the gateway continues: continue (default): any caller\'s; trustedProxies: only a peer server.trustProxy trusts; restart: no one\'s. A request not continued starts a new trace (new trace id, sampled as any new trace), its tracestate and baggage not sent upstream. At an edge, continue lets any client choose the trace id and sampled flag, and so which of its requests are traced.'
  })),
  shutdownTimeout: Type.Optional(Type.Union([Duration], { description: 'On SIGTERM/SIGINT, how long in-flight requests may take before connections are cut. Default 30s.' })),
  keepAliveTimeout: Type.Optional(Type.Union([Duration], { description: 'Idle time before a client keep-alive connection is closed. More than 0. Default 72s.' })),
  pluginTimeout: Type.Optional(Type.Union([
    // More than 0 (at least 1 ms): it bounds setup and dispose too, which 0 would fail at once.
    Type.Integer({ minimum: 1, maximum: MAX_DURATION_MS }),
    Type.String({ pattern: '^(?:\\d*[1-9]\\d*(?:\\.\\d+)?(?:ms|s|m|h|d)|0*\\.(?:[1-9]|\\d[1-9]|\\d\\d[1-9])\\d*(?:s|m|h|d))$', maxMs: MAX_DURATION_MS })
  ], {
    explain: 'pluginTimeout',
    description: 'Time a plugin\'s setup may take when a config loads (past it the config is refused, and on reload the active one keeps serving), and its dispose when the config is replaced or the gateway stops (past it, logged and left behind). Each async onRequest and onResponse of a request too, whatever the route\'s timeouts.request: past it, 504 gateway_timeout and the warning "plugin timed out" naming the plugin and hook. Plugins read it in setup (ctx.hookTimeoutMs). More than 0. Default 30s.'
  })),
  reloadTunnelTimeout: Type.Optional(Type.Union([Duration], { description: 'How long requests begun on a config a reload replaces may still run after the reload: past it, its WebSockets (and other upgrade tunnels) are closed at both ends, and its other requests still in flight are cut, a response under way (SSE, a download) or not yet answered (logged with error: reload), so that a credential the reload revoked stops being relayed, and the old config is released; a tunnel whose upstream accepts it later is closed at once. The value in the config the reload puts in service applies. More than 0. Default: no limit (they run until either end ends them).' })),
  clientTimeouts: Type.Optional(Type.Object({
    headers: Type.Optional(Type.Union([Duration], { description: 'Time a client has to send the request line and headers; past it, 408 and the connection is closed (nginx client_header_timeout, 60s). More than 0. Default 30s.' })),
    body: Type.Optional(Type.Union([Duration], { description: 'Longest pause between two reads of the request body; past it, the connection and the upstream try are closed (nginx client_body_timeout, 60s). 0: no limit (minBodyRate may still bound the body). Default 60s.' })),
    minBodyRate: Type.Optional(Type.Integer({ minimum: 1, description: 'Optional least average rate of the request body, in bytes per second, as Apache\'s mod_reqtimeout MinRate: a body may take `body` plus one second per minBodyRate bytes received; past it, the connection and the upstream try are closed (client_body_too_slow). Time the gateway itself holds the body back (upstream backpressure) is not counted. Default: no minimum.' })),
    send: Type.Optional(Type.Union([Duration], { description: 'Longest time a client may not read the response while the gateway has more to send; past it, the connection and the upstream try are closed (nginx send_timeout, 60s). 0: no limit. Default 60s.' }))
  }, { ...closed, description: 'Limits on slow clients, so that none holds an upstream connection or a socket for long.' })),
  removeRequestHeaders: Type.Optional(Type.Array(Type.String({ pattern: TOKEN, errorMessage: 'must be a header name' }), {
    description: 'Request headers never sent upstream, on any route (their _ spellings too). Default [x-original-url, x-rewrite-url, x-http-method-override, x-http-method, x-method-override]: some backend frameworks take them as the path or the method, which would let a client bypass the route and its plugins. [] passes them on.'
  })),
  tls: Type.Optional(Type.Object({
    certificates: Type.Array(Type.Object({
      cert: Type.String({ minLength: 1, description: 'PEM certificate (chain) file, relative to this file.' }),
      key: Type.String({ minLength: 1, description: 'PEM private key file of the certificate.' }),
      ocsp: Type.Optional(Type.String({ minLength: 1, description: 'DER OCSP response for this certificate (e.g. from `openssl ocsp -respout`), stapled for clients that ask. Served as is: keep it fresh.' }))
    }, closed), { minItems: 1, description: 'The first is the default; the others are chosen by the name the client asks for (SNI), from their own names, exact or wildcard. Reloaded with the config, and when one of the files changes.' }),
    minVersion: Type.Optional(Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { errorMessage: 'must be TLSv1.2 or TLSv1.3', description: 'Oldest TLS version accepted. Default TLSv1.2.' })),
    ciphers: Type.Optional(Type.String({ minLength: 1, description: 'OpenSSL cipher list (TLS_* names set the TLS 1.3 suites), e.g. "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256". Default: Mozilla intermediate for TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305), Node\'s TLS 1.3 suites.' })),
    curves: Type.Optional(Type.String({ minLength: 1, description: 'Key exchange groups, colon-separated, in order of preference, e.g. "X25519:prime256v1:secp384r1". Default: those of the OpenSSL in Node ("auto").' })),
    redirectHttp: Type.Optional(Type.Object({
      listen: listen('0.0.0.0'),
      httpsPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'The HTTPS port the redirects name (the one clients reach, if a port mapping changes it). Default server.listen.port; 443 is left out of the URL.' }))
    }, { ...closed, description: 'A plain-HTTP listener that answers every request with 308 to the same path and query over HTTPS. Its address cannot change on reload.' })),
    clientAuth: Type.Optional(Type.Object({
      ca: Type.String({ minLength: 1, description: 'PEM file of the CA(s) client certificates must chain to.' }),
      mode: Type.Union([Type.Literal('request'), Type.Literal('require')], { errorMessage: 'must be request or require', description: 'require: no verified certificate, no connection. request: asked for; plugins see it only when it verifies.' })
    }, { ...closed, description: 'Client certificates (mTLS); the verified subject is on GatewayRequest.clientCertificate.' }))
  }, { ...closed, description: 'Serve HTTPS on server.listen. Switching TLS on or off needs a restart; certificates reload.' })),
  http2: Type.Optional(Type.Union([Type.Boolean(), Http2], {
    errorMessage: 'must be true, false, or an object of HTTP/2 settings',
    description: 'HTTP/2 to clients. true: on the TLS listener (ALPN h2, with HTTP/1.1 on the same port; needs server.tls). An object: the same with its limits, and optionally cleartext HTTP/2 (h2c, prior knowledge) on a port of its own. Default false. Switching it needs a restart.'
  })),
  maxConnections: Type.Optional(Type.Integer({ minimum: 1, description: 'Client connections open at once; more are closed on accept, with a log line. Default: no limit (the file descriptor limit).' })),
  requestBufferTotal: Type.Optional(ByteSize({ description: 'Bytes of request bodies the process may hold read ahead of their upstream connection at once, over all requests: a body an upstream would read whole first (requestBuffer, or one a retry may send again) or read on while it waits in a queue. Past it such a body streams instead, taking a connection once its first bytes are in, and a retry cannot send it again; a queued body is not read on. Shown in portcullis_request_buffer_bytes. Default 64MiB.' })),
  // 'auto' first: Ajv (allErrors, coerceTypes) tries every branch, and the string branch turns a
  // number into a string in place; the Integer branch after it turns it back.
  workers: Type.Optional(Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1 })], {
    errorMessage: 'must be a whole number of processes (1 or more) or "auto" (one per CPU core)',
    description: 'Processes sharing the listening port: a number, or "auto" for one per CPU core. Default 1 (no worker processes).'
  }))
}, closed)

/** A bearer token as a config value: what a header can carry, byte for byte. */
const bearerToken = (description: string) => Type.Optional(Type.String({
  minLength: 16,
  // Node trims header values: a token ending in a secret file's newline could never be sent. Node
  // reads a header value's bytes as Latin-1: a token beyond printable ASCII could never match
  // either (as key-auth's keys). Each rule lets what the other reports pass: one message each.
  allOf: [
    { pattern: '^\\S(?:[\\s\\S]*\\S)?$', errorMessage: 'has white space at its start or end (a trailing newline from a secret file?): remove it; a token sent in a header never has any, so this one would never match' },
    { pattern: '^\\s*[\\x20-\\x7e]*\\s*$', errorMessage: 'has a character beyond printable ASCII (a letter such as é, a control character): a token sent in a header is read byte by byte as Latin-1, so this one would never match; use printable ASCII (space to ~)' }
  ],
  description
}))

const Admin = Type.Object({
  listen: listen('127.0.0.1'),
  token: bearerToken('Bearer token every admin endpoint but /healthz and /readyz requires, e.g. "${ADMIN_TOKEN}". Required when listen.host is not loopback.'),
  readToken: bearerToken('A second bearer token that may only read: GET and HEAD on every admin endpoint (/metrics, /config, /routes...), for Prometheus and dashboards, e.g. "${ADMIN_READ_TOKEN}". Needs admin.token.')
}, closed)

const Logging = Type.Object({
  level: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), {
    errorMessage: 'must be one of fatal, error, warn, info, debug, trace, silent'
  })),
  accessLog: Type.Optional(Type.Boolean({ description: 'One JSON line per request. Default true.' })),
  headers: Type.Optional(Type.Boolean({ description: 'Include request headers in access-log lines (credentials are redacted). Default false.' })),
  redactHeaders: Type.Optional(Type.Array(Type.String({ pattern: TOKEN, errorMessage: 'must be a header name' }), {
    description: 'More headers shown as [redacted] in access-log lines with headers, request and response, on every route (any case), e.g. [x-session-token]: those of the usual credentials and those any route\'s plugins read credentials from always are.'
  })),
  pretty: Type.Optional(Type.Boolean({ description: 'Human-readable logs. Default: when stdout is a terminal.' }))
}, closed)

const MetricsSettings = Type.Object({
  requests: Type.Optional(Type.Boolean({ description: 'Request metrics (portcullis_http_*, upstream response time, gateway overhead). Default true.' }))
}, closed)

const RouteMetricsSettings = Type.Object({
  requests: Type.Optional(Type.Boolean({ description: 'This route in the request metrics by route (portcullis_http_requests_total, request duration, gateway overhead, bytes): false leaves it out of them all; it still counts in portcullis_http_requests_in_flight and its upstream\'s response time. Cannot turn on what the top-level metrics.requests: false turns off. Default true.' }))
}, closed)

const responseTimeouts = {
  response: Type.Optional(Type.Union([Duration], { description: 'Time to wait for the upstream response headers. Default 60s.' })),
  idle: Type.Optional(Type.Union([Duration], { description: 'Longest pause between two body chunks from the upstream. Default 60s.' })),
  request: Type.Optional(Type.Union([Duration], {
    description: 'The whole request, retries included: from its arrival to the last byte of the response. 504 if no response has begun (408 while the client\'s body is still arriving: the wait is the client\'s), else the connection is cut. Default: no limit.'
  }))
}
const Timeouts = Type.Object({
  connect: Type.Optional(Type.Union([Duration], { description: 'Time to open a connection to a target. Default 5s.' })),
  ...responseTimeouts
}, closed)
const RouteTimeouts = Type.Object(responseTimeouts, closed)

const Target = Type.Object({
  url: Type.String({ pattern: '^https?://[^/?#@]+/?$', explain: 'targetUrl', description: 'An origin: http:// or https://, a host, an optional port, no path or user, e.g. http://10.0.0.5:3000.' }),
  weight: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Share of traffic relative to the other targets. Default 1.' })),
  resolve: Type.Optional(TargetResolve),
  dnsInterval: Type.Optional(Type.Union([Duration], { description: 'With resolve: dns, how often the name is resolved again. Default 30s.' }))
}, closed)

const Upstream = Type.Object({
  targets: Type.Array(Target, { minItems: 1 }),
  connections: Type.Optional(Type.Integer({ minimum: 1, description: 'Max connections per target. Default 128.' })),
  pipelining: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Requests sent on one connection before the previous answer (HTTP/1.1 pipelining). Default 1 (off). Above 1, logged as a warning at every load: one answer that runs past its length hands the next ones on its connection to the wrong clients.' })),
  keepAlive: Type.Optional(Type.Union([Duration], { description: 'How long an idle upstream connection is kept. Default 4s.' })),
  requestBuffer: Type.Optional(ByteSize({ description: 'Request bodies up to this size (by content-length) are read whole before an upstream connection is taken, so that a slow uploader never holds one; larger and chunked bodies (and HTTP/2 ones without content-length) stream, once their first bytes or their end have come: a client that sends none holds no connection. 0 streams every body a retry would not send again: one a retry may (of a method in retries.methods, up to retries.maxBodyBytes, when retries.on lists more than connect-error) is read first whatever this says. Default: retries.maxBodyBytes (64KiB).' })),
  responseBuffer: Type.Optional(ByteSize({ description: 'Responses up to this size (by content-length) are read whole from the upstream whatever the client\'s pace, so the connection goes back to the pool at once; larger and chunked responses stream with backpressure (and server.clientTimeouts.send). 0 streams every response. Default 64KiB.' })),
  queue: Type.Optional(Type.Object({
    max: Type.Optional(Type.Integer({ minimum: 0, description: 'Requests that may wait for a connection, per target, when all connections × pipelining are busy; past it, 503 upstream_busy at once. Default 1024.' })),
    timeout: Type.Optional(Type.Union([Duration], { description: 'Longest wait for a connection; past it, 503 upstream_busy. Default 30s.' }))
  }, { ...closed, description: 'Requests beyond connections × pipelining wait in the gateway (never in the connection pool), first come first served; a request whose client leaves stops waiting and is never sent.' })),
  timeouts: Type.Optional(Timeouts),
  tls: Type.Optional(Type.Object({
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file (relative to this file) of the CA(s) that sign the targets\' certificates. Default: Node\'s built-in public CAs.' })),
    cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the client certificate the gateway presents (mTLS to the upstream); needs key.' })),
    key: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the client certificate\'s private key.' })),
    servername: Type.Optional(Type.String({ minLength: 1, description: 'Name sent in SNI and checked against the target\'s certificate. Default: the target URL\'s host name.' })),
    rejectUnauthorized: Type.Optional(Type.Boolean({ description: 'Refuse targets whose certificate does not verify. Default true; false is logged as a warning at every load.' }))
  }, { ...closed, description: 'TLS settings for https:// targets. A certificate that does not verify fails the request with 502 and a log line, never an insecure fallback.' })),
  balance: Type.Optional(Balance),
  hashOn: Type.Optional(HashOn),
  healthCheck: Type.Optional(HealthCheck),
  passive: Type.Optional(Passive),
  whenAllUnhealthy: Type.Optional(WhenAllUnhealthy),
  retries: Type.Optional(Retries),
  circuitBreaker: Type.Optional(CircuitBreaker)
}, closed)

const OneOrMany = (s: TSchema) => Type.Union([s, Type.Array(s, { minItems: 1 })])

const Match = Type.Object({
  host: Type.Optional(Type.Union([OneOrMany(Type.String({ minLength: 1 }))], { description: 'Host name(s): exact (api.example.com) or wildcard (*.example.com).' })),
  path: Type.String({ pattern: '^/', errorMessage: 'must start with /', description: 'Exact (/users), prefix (/users/*) or with params (/users/:id).' }),
  methods: Type.Optional(Type.Array(Type.String({ pattern: '^[A-Za-z]+$', errorMessage: 'must be an HTTP method name such as GET' }), { minItems: 1 })),
  headers: Type.Optional(Type.Record(Type.String({ pattern: TOKEN }), Type.String(), {
    additionalProperties: false, errorMessage: 'is not a header name', description: 'Header values that must match exactly.'
  }))
}, closed)

/** Builds the config schema. `plugins` adds each plugin's own schema under routes[].plugins (for editors). */
export function configSchema (plugins: ReadonlyArray<ConsumerParts & { schema: TSchema }> = []) {
  const pluginsOf = (off: boolean) => plugins.length === 0
    ? Type.Record(Type.String(), Type.Unknown())
    // Optional: a config names only the plugins it uses.
    : Type.Object(Object.fromEntries(plugins.map(p => [p.name, Type.Optional(off ? Type.Union([p.schema, Type.Literal(false)]) : p.schema)])), { additionalProperties: true })
  const RoutePlugins = pluginsOf(true)
  const Route = Type.Object({
    name: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', errorMessage: 'must be letters, digits, _ . - (starting with a letter or digit)' }),
    match: Match,
    upstream: Type.String({ minLength: 1 }),
    stripPrefix: Type.Optional(Type.String({ pattern: '^/', errorMessage: 'must start with /' })),
    rewrite: Type.Optional(Type.String({ pattern: '^/', errorMessage: 'must start with /', description: 'Path template for the upstream, using the match\'s :params and *.' })),
    preserveHost: Type.Optional(Type.Boolean({ description: 'Send the client\'s Host header upstream. Default false (the target\'s host).' })),
    hostHeader: Type.Optional(Type.String({ minLength: 1, description: 'Send this Host header upstream.' })),
    websocket: Type.Optional(Type.Boolean({ description: 'Allow WebSocket upgrades. Default true.' })),
    upgrade: Type.Optional(Type.Array(Type.String({
      pattern: '^(?![hH]2[cC](/|$))[A-Za-z0-9!#$%&\'*+.^_`|~-]+(/[A-Za-z0-9!#$%&\'*+.^_`|~-]+)?$',
      errorMessage: 'must be an Upgrade protocol such as websocket (h2c is never tunnelled: it would carry requests past routing and plugins)'
    }), { description: 'Protocols a client may switch to with Upgrade (the connection is then tunnelled to the upstream). Default [websocket]. h2c is never allowed.' })),
    timeouts: Type.Optional(RouteTimeouts),
    metrics: Type.Optional(RouteMetricsSettings),
    plugins: Type.Optional(RoutePlugins)
  }, closed)

  return Type.Object({
    server: Server,
    admin: Type.Optional(Admin),
    logging: Type.Optional(Logging),
    metrics: Type.Optional(MetricsSettings),
    loadPlugins: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { description: 'Paths (relative to this file) of your own plugin modules.' })),
    stores: Type.Optional(Stores),
    consumers: Type.Optional(consumersSchema(plugins)),
    plugins: Type.Optional(Type.Unsafe<Record<string, unknown>>({ ...pluginsOf(false), description: 'Plugins for every route. A route\'s own entry replaces the config here; `name: false` turns one off for that route.' })),
    upstreams: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), Upstream, { additionalProperties: false }),
    routes: Type.Array(Route)
  }, { ...closed, $id: 'https://portcullis.dev/gateway.schema.json', title: 'Portcullis gateway configuration' })
}

export type GatewayConfig = Static<ReturnType<typeof configSchema>>
export type RouteConfig = GatewayConfig['routes'][number]
export type UpstreamConfig = GatewayConfig['upstreams'][string]
export type TimeoutsConfig = NonNullable<UpstreamConfig['timeouts']>
