/** What decides the requests a route takes, in the router's terms (router.ts). */
export interface RouteMatcher {
  /** `api.example.com`, `*.example.com` (normalized); empty: any host. */
  readonly hosts: ReadonlySet<string>
  /** The pattern with its param names dropped: `/users/:` for `/users/:id`. */
  readonly path: string
  /** Upper-case, GET's HEAD added; undefined: any method. */
  readonly methods: ReadonlySet<string> | undefined
  /** `name: value`, the name in lower case. */
  readonly headers: readonly string[]
}

/** routes[`by`] takes every request of a route's; `hosts`, `methods`: it has more of them (neither: it matches the same requests). */
export interface Shadow { readonly by: number, readonly hosts: boolean, readonly methods: boolean }

const subset = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean => [...a].every(x => b.has(x))

/**
 * Finds the routes an earlier one always takes. A request tries the list of its exact host, then of
 * each wildcard over it (longest first), then of routes without `host`; in a list, the path's rank,
 * then having `methods`, then the number of `headers`, then file order. So B (later) is never chosen
 * when an earlier A has the same path, the same `methods`-or-not and the same headers (no fewer, as
 * A's must be no stricter: then the same), each of B's hosts (as written: a wildcard's list comes after
 * an exact host's, `host`-less routes' after both) and, when both have them, each of B's methods.
 * A route is compared only with those of its path, rank and first host (indexed so): not with every one.
 */
export class ShadowedRoutes {
  readonly #seen = new Map<string, Array<{ index: number, matcher: RouteMatcher }>>()

  /** The first earlier route that takes every request of `matcher`'s. */
  add (index: number, matcher: RouteMatcher): Shadow | undefined {
    const rank = JSON.stringify([matcher.path, matcher.methods !== undefined, [...matcher.headers].sort()])
    const key = (host: string) => rank + ' ' + host
    const hosts = matcher.hosts.size === 0 ? [''] : [...matcher.hosts]
    const shadow = this.#seen.get(key(hosts[0] as string))?.find(({ matcher: earlier }) =>
      subset(matcher.hosts, earlier.hosts) && (matcher.methods === undefined || subset(matcher.methods, earlier.methods as ReadonlySet<string>)))
    for (const host of hosts) {
      const list = this.#seen.get(key(host))
      if (list === undefined) this.#seen.set(key(host), [{ index, matcher }])
      else list.push({ index, matcher })
    }
    if (shadow === undefined) return undefined
    return { by: shadow.index, hosts: shadow.matcher.hosts.size > matcher.hosts.size, methods: (shadow.matcher.methods?.size ?? 0) > (matcher.methods?.size ?? 0) }
  }
}
