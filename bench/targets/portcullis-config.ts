const url = (port: number | undefined) => `{ url: "http://127.0.0.1:${port as number}" }`

const common = `
server:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: true`

/**
 * Cases (c) and (d): one plain route to an upstream of one target, or of three (round-robin over
 * three ports of the same origin process). Nothing else: the two differ only in balancing.
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
 * Case (i): (c) with request metrics off (`metrics.requests: false`), so that (c)/(i) is what
 * request metrics cost on the plain route.
 */
export function noMetricsConfig (ports: readonly number[]): string {
  return `${plainConfig(ports, 1)}metrics:
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
 * Case (f): (c)'s route with the cache plugin. The origin sends no freshness, so defaultTtl makes
 * its answer storable: every measured request is a hit.
 */
export function cachedConfig (ports: readonly number[]): string {
  return `${plainConfig(ports, 1)}    plugins:
      cache: { defaultTtl: 1h }
`
}

/**
 * Cases (g) and (h): (c)'s route with a rate limit high enough never to reject, its counters in
 * this process's memory (g) or in a Redis server (h, `redisUrl`): one store call per request.
 */
export function rateLimitConfig (ports: readonly number[], redisUrl?: string): string {
  return `${plainConfig(ports, 1)}    plugins:
      rate-limit:
        store: ${redisUrl === undefined ? 'memory' : 'shared'}
        limits: [ { name: bench, requests: 1000000000, window: 1s } ]
${redisUrl === undefined ? '' : `stores:
  shared: { type: redis, url: "${redisUrl}" }
`}`
}

/**
 * `npm run bench:h2`: (c)'s route on a TLS listener that speaks HTTP/2 and HTTP/1.1 (ALPN), with
 * the certificate `server.pem`/`server.key` beside the config file.
 */
export function h2Config (ports: readonly number[]): string {
  return plainConfig(ports, 1).replace('  listen: { host: 127.0.0.1, port: 0 }\n',
    '  listen: { host: 127.0.0.1, port: 0 }\n  tls: { certificates: [ { cert: server.pem, key: server.key } ] }\n  http2: true\n')
}
