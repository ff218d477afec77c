import type { IncomingHttpHeaders } from 'node:http'
import { hostMatches, underSuffix, type HostPattern } from './host-pattern.ts'
import { paramsAt, type PathPattern } from './path-pattern.ts'
import { routingForm } from './normalize-path.ts'
import { RouteList } from './route-list.ts'

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

/** TRACE echoes the request, credentials included (cross-site tracing): answered only by a route whose methods name it. */
export const refusesTrace = (method: string, route: Matchable): boolean => method === 'TRACE' && route.methods === undefined

export interface RouteMatch<R> { route: R, params: Record<string, string> }

/** Whether `route` takes a request for `host` (normalized), `method` and `path` (routingForm), whatever its headers. */
export function takesAsideFromHeaders (route: Matchable, host: string, method: string, path: string): boolean {
  return (route.methods === undefined || route.methods.has(method)) &&
    (route.hosts.length === 0 || route.hosts.some(h => hostMatches(h, host))) &&
    route.path.match(path) !== undefined
}

/**
 * Precedence (documented in docs/routing.md): an exact host beats a wildcard host (longer suffix first)
 * beats no host; then the path's rank (exact > params > prefix, longer literal text, more segments);
 * then routes with methods, then more header conditions; then file order.
 * Everything is sorted once, at config load.
 */
export class Router<R extends Matchable> {
  readonly #exact = new Map<string, RouteList<R>>()
  readonly #wildcards: Array<{ suffix: string, routes: RouteList<R> }> = []
  readonly #anyHost: RouteList<R>

  constructor (routes: readonly R[]) {
    const exact = new Map<string, R[]>()
    const wildcards = new Map<string, R[]>()
    const anyHost: R[] = []
    for (const r of routes) {
      if (r.hosts.length === 0) anyHost.push(r)
      for (const h of r.hosts) {
        const [map, key] = h.kind === 'exact' ? [exact, h.host] : [wildcards, h.suffix]
        const list = map.get(key) ?? []
        list.push(r)
        map.set(key, list)
      }
    }
    for (const [host, list] of exact) this.#exact.set(host, new RouteList(list.sort(compareRoutes)))
    for (const [suffix, list] of wildcards) this.#wildcards.push({ suffix, routes: new RouteList(list.sort(compareRoutes)) })
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length)
    this.#anyHost = new RouteList(anyHost.sort(compareRoutes))
  }

  /** Every route in precedence order: exact hosts (by name), wildcard hosts, any host. */
  ordered (): R[] {
    const exact = [...this.#exact.entries()].sort(([a], [b]) => a.localeCompare(b)).flatMap(([, list]) => list.routes)
    const all = [...exact, ...this.#wildcards.flatMap(w => w.routes.routes), ...this.#anyHost.routes]
    return [...new Set(all)]
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

  /**
   * For a request match() gave no route: the methods of the routes that would take it with another
   * method (a route for GET takes HEAD), sorted; none when no route matches its host, path and headers.
   * Walks every route the path reaches, so only a request no route took pays for it.
   */
  allowedMethods (host: string, path: string, headers: IncomingHttpHeaders): string[] {
    const routed = routingForm(path)
    const allowed = new Set<string>()
    this.#exact.get(host)?.match('', routed, headers, allowed)
    for (const w of this.#wildcards) if (underSuffix(host, w.suffix)) w.routes.match('', routed, headers, allowed)
    this.#anyHost.match('', routed, headers, allowed)
    return [...allowed].sort()
  }

  #match (host: string, method: string, path: string, headers: IncomingHttpHeaders): RouteMatch<R> | undefined {
    const exact = this.#exact.get(host)
    if (exact !== undefined) {
      const m = exact.match(method, path, headers)
      if (m !== undefined) return m
    }
    for (let i = 0; i < this.#wildcards.length; i++) {
      const w = this.#wildcards[i] as { suffix: string, routes: RouteList<R> }
      if (!underSuffix(host, w.suffix)) continue
      const m = w.routes.match(method, path, headers)
      if (m !== undefined) return m
    }
    return this.#anyHost.match(method, path, headers)
  }
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
