import type { IncomingHttpHeaders } from 'node:http'
import { underSuffix, type HostPattern } from './host-pattern.ts'
import { paramsAt, type PathPattern } from './path-pattern.ts'
import { routingForm } from './normalize-path.ts'

/** What the router needs to know of a route. */
export interface Matchable {
  /** Position in the config file: the last tie-breaker. */
  readonly index: number
  /** Empty means any host. */
  readonly hosts: readonly HostPattern[]
  readonly path: PathPattern
  /** Upper-case; undefined means any method. GET also allows HEAD. */
  readonly methods: ReadonlySet<string> | undefined
  /** [lower-case name, exact value] pairs. */
  readonly headers: ReadonlyArray<readonly [string, string]>
}

export interface RouteMatch<R> { route: R, params: Record<string, string> }

/**
 * Precedence (documented in docs/routing.md): an exact host beats a wildcard host (longer suffix first)
 * beats no host; then the path's rank (exact > params > prefix, longer literal text, more segments);
 * then routes with methods, then more header conditions; then file order.
 * Everything is sorted once, at config load.
 */
export class Router<R extends Matchable> {
  readonly #exact = new Map<string, R[]>()
  readonly #wildcards: Array<{ suffix: string, routes: R[] }> = []
  readonly #anyHost: R[] = []

  constructor (routes: readonly R[]) {
    for (const r of routes) {
      if (r.hosts.length === 0) this.#anyHost.push(r)
      for (const h of r.hosts) {
        if (h.kind === 'exact') {
          const list = this.#exact.get(h.host) ?? []
          list.push(r)
          this.#exact.set(h.host, list)
        } else {
          let entry = this.#wildcards.find(w => w.suffix === h.suffix)
          if (entry === undefined) { entry = { suffix: h.suffix, routes: [] }; this.#wildcards.push(entry) }
          entry.routes.push(r)
        }
      }
    }
    for (const list of this.#exact.values()) list.sort(compareRoutes)
    for (const w of this.#wildcards) w.routes.sort(compareRoutes)
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length)
    this.#anyHost.sort(compareRoutes)
  }

  /** Every route in precedence order: exact hosts (by name), wildcard hosts, any host. */
  ordered (): R[] {
    const exact = [...this.#exact.entries()].sort(([a], [b]) => a.localeCompare(b)).flatMap(([, routes]) => routes)
    const all = [...exact, ...this.#wildcards.flatMap(w => w.routes), ...this.#anyHost]
    return all.filter((r, i) => all.indexOf(r) === i)
  }

  /**
   * The route for a normalized `path` (as forwarded): matched on its routingForm, the params taken
   * from the path as forwarded.
   */
  match (host: string, method: string, path: string, headers: IncomingHttpHeaders): RouteMatch<R> | undefined {
    const routed = routingForm(path)
    const m = this.#match(host, method, routed, headers)
    if (m !== undefined && routed !== path && m.route.path.params.length > 0) m.params = paramsAt(m.route.path, path)
    return m
  }

  #match (host: string, method: string, path: string, headers: IncomingHttpHeaders): RouteMatch<R> | undefined {
    const exact = this.#exact.get(host)
    if (exact !== undefined) {
      const m = firstMatch(exact, method, path, headers)
      if (m !== undefined) return m
    }
    for (let i = 0; i < this.#wildcards.length; i++) {
      const w = this.#wildcards[i] as { suffix: string, routes: R[] }
      if (!underSuffix(host, w.suffix)) continue
      const m = firstMatch(w.routes, method, path, headers)
      if (m !== undefined) return m
    }
    return firstMatch(this.#anyHost, method, path, headers)
  }
}

function firstMatch<R extends Matchable> (routes: readonly R[], method: string, path: string, headers: IncomingHttpHeaders): RouteMatch<R> | undefined {
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i] as R
    if (route.methods !== undefined && !route.methods.has(method)) continue
    const params = route.path.match(path)
    if (params === undefined) continue
    if (route.headers.length > 0 && !headersMatch(route.headers, headers)) continue
    return { route, params }
  }
  return undefined
}

function headersMatch (wanted: ReadonlyArray<readonly [string, string]>, headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of wanted) if (headers[name] !== value) return false
  return true
}

function compareRoutes (a: Matchable, b: Matchable): number {
  for (let i = 0; i < a.path.rank.length; i++) {
    const d = (b.path.rank[i] as number) - (a.path.rank[i] as number)
    if (d !== 0) return d
  }
  const methods = Number(b.methods !== undefined) - Number(a.methods !== undefined)
  if (methods !== 0) return methods
  return b.headers.length - a.headers.length || a.index - b.index
}
