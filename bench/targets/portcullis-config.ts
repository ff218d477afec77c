const url = (port: number | undefined) => `"http://127.0.0.1:${port as number}"`

/** Case (c): one plain route to one target, nothing else. */
export function plainConfig (ports: readonly number[]): string {
  return `
server:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: true
upstreams:
  origin:
    targets: [ { url: ${url(ports[0])} } ]
routes:
  - name: all
    match: { path: /* }
    upstream: origin
`
}

/**
 * Cases (d) and (e), in a second Portcullis process so that reloads never touch (c): the route
 * `three-targets` balances round-robin over three ports of the same origin; `all` is (c)'s route,
 * loaded while reloading. `generation` names one route and one upstream, so that each reload
 * changes routes and upstreams.
 */
export function opsConfig (ports: readonly number[], generation: number): string {
  return `
server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
logging:
  level: info
  accessLog: true
upstreams:
  origin:
    targets: [ { url: ${url(ports[0])} } ]
  trio:
    balance: round-robin
    targets: [ { url: ${url(ports[0])} }, { url: ${url(ports[1])} }, { url: ${url(ports[2])} } ]
  spare-${generation}:
    targets: [ { url: ${url(ports[1])} } ]
routes:
  - name: all
    match: { path: /* }
    upstream: origin
  - name: three-targets
    match: { path: /rr/* }
    upstream: trio
    stripPrefix: /rr
  - name: generation-${generation}
    match: { path: /generation-${generation} }
    upstream: spare-${generation}
`
}
