const url = (port: number | undefined) => `{ url: "http://127.0.0.1:${port as number}" }`

const common = `
server:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: true`

/**
 * One plain route to an upstream of one target (the plain route of (c)'s process), or of three
 * (case d: round-robin over three ports of the same origin process).
 */
export function plainConfig (ports: readonly number[], targets: 1 | 3): string {
  return `${common}
upstreams:
  origin:
    balance: round-robin
    targets: [ ${ports.slice(0, targets).map(url).join(', ')} ]
routes:
  - name: all
    match: { path: /* }
    upstream: origin
`
}

/**
 * Case (c)'s process, which also serves (f), (g) and (h) on routes of their own: each plugin case
 * is measured against the plain route in one process (one heap, one JIT state), because two
 * processes running the same config differ by up to 6% in CPU per request. The plain route is
 * `/*`; the cache hit `/cached/*`; the rate limits, high enough never to reject, `/limited/*` (in
 * this process's memory) and `/limited-redis/*` (on `redisUrl`; left out without one, when (h) is not measured).
 */
export function oneProcessConfig (ports: readonly number[], redisUrl: string | undefined): string {
  const route = (name: string, plugins: string) => `  - name: ${name}
    match: { path: /${name}/* }
    upstream: origin
    plugins:
${plugins}`
  const limit = (store: string) => `      rate-limit:
        store: ${store}
        limits: [ { name: bench, requests: 1000000, window: 1s } ]
`
  // The origin sends no freshness, so defaultTtl makes its answer storable: every measured request is a hit.
  const onRedis = redisUrl === undefined ? '' : `${route('limited-redis', limit('shared'))}stores:
  shared: { type: redis, url: "${redisUrl}" }
`
  return `${plainConfig(ports, 1)}${route('cached', '      cache: { defaultTtl: 1h }\n')}${route('limited', limit('memory'))}${onRedis}`
}

/**
 * Case (i): (c)'s process with request metrics off (`metrics.requests: false`), so that (c)/(i) is
 * what request metrics cost on the plain route.
 */
export function noMetricsConfig (ports: readonly number[], redisUrl: string | undefined): string {
  return `${oneProcessConfig(ports, redisUrl)}metrics:
  requests: false
`
}

/**
 * Case (e), in a Portcullis of its own so that reloads never touch the others: (c)'s route, plus
 * an admin listener and, named by `generation`, one more route and upstream, so that each reload
 * changes routes and upstreams.
 */
export function reloadingConfig (ports: readonly number[], generation: number): string {
  return `${common}
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  origin:
    targets: [ ${url(ports[0])} ]
  spare-${generation}:
    targets: [ ${url(ports[1])} ]
routes:
  - name: all
    match: { path: /* }
    upstream: origin
  - name: generation-${generation}
    match: { path: /generation-${generation} }
    upstream: spare-${generation}
`
}

/**
 * `npm run bench:h2`: (c)'s route on a TLS listener that speaks HTTP/2 and HTTP/1.1 (ALPN), with
 * the certificate `server.pem`/`server.key` beside the config file.
 */
export function h2Config (ports: readonly number[]): string {
  return plainConfig(ports, 1).replace('  listen: { host: 127.0.0.1, port: 0 }\n',
    '  listen: { host: 127.0.0.1, port: 0 }\n  tls: { certificates: [ { cert: server.pem, key: server.key } ] }\n  http2: true\n')
}
