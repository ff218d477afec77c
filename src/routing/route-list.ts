import type { IncomingHttpHeaders } from 'node:http'
import type { Matchable, RouteMatch } from './router.ts'

/** Below this many routes a list is walked whole: an index would cost more than it saves. */
const INDEXED_FROM = 32

interface Entry<R> { readonly route: R, readonly order: number }

/**
 * Routes in precedence order, and the first that takes a request. A long list is indexed by the
 * first segment of the routes' patterns: a request walks the routes whose pattern starts with its
 * own first segment, merged in precedence order with those whose pattern starts with a param or
 * "*", not every route (6,000 prefix routes cost 60 µs a request walked whole).
 */
export class RouteList<R extends Matchable> {
  readonly routes: readonly R[]
  readonly #byFirst: Map<string, ReadonlyArray<Entry<R>>> | undefined
  readonly #generic: ReadonlyArray<Entry<R>> = []

  /** `routes`: in precedence order. */
  constructor (routes: readonly R[]) {
    this.routes = routes
    if (routes.length < INDEXED_FROM) return
    const byFirst = new Map<string, Array<Entry<R>>>()
    const generic: Array<Entry<R>> = []
    routes.forEach((route, order) => {
      const first = literalFirstSegment(route.path.source)
      if (first === undefined) { generic.push({ route, order }); return }
      const list = byFirst.get(first) ?? []
      list.push({ route, order })
      byFirst.set(first, list)
    })
    this.#byFirst = byFirst
    this.#generic = generic
  }

  match (method: string, path: string, headers: IncomingHttpHeaders): RouteMatch<R> | undefined {
    const byFirst = this.#byFirst
    if (byFirst === undefined) {
      const routes = this.routes
      for (let i = 0; i < routes.length; i++) {
        const m = tryRoute(routes[i] as R, method, path, headers)
        if (m !== undefined) return m
      }
      return undefined
    }
    const slash = path.indexOf('/', 1)
    const a = byFirst.get(slash === -1 ? path.slice(1) : path.slice(1, slash)) ?? NONE as ReadonlyArray<Entry<R>>
    const b = this.#generic
    for (let i = 0, j = 0; i < a.length || j < b.length;) {
      const e = j >= b.length || (i < a.length && (a[i] as Entry<R>).order < (b[j] as Entry<R>).order) ? a[i++] as Entry<R> : b[j++] as Entry<R>
      const m = tryRoute(e.route, method, path, headers)
      if (m !== undefined) return m
    }
    return undefined
  }
}

const NONE: ReadonlyArray<Entry<never>> = []

/** A pattern's first segment when it is literal text (`/users/:id` → `users`, `/` → ``); undefined for a param or "*". */
function literalFirstSegment (source: string): string | undefined {
  const slash = source.indexOf('/', 1)
  const first = slash === -1 ? source.slice(1) : source.slice(1, slash)
  return first.startsWith(':') || first === '*' ? undefined : first
}

function tryRoute<R extends Matchable> (route: R, method: string, path: string, headers: IncomingHttpHeaders): RouteMatch<R> | undefined {
  if (route.methods !== undefined && !route.methods.has(method)) return undefined
  const params = route.path.match(path)
  if (params === undefined) return undefined
  if (route.headers.length > 0 && !headersMatch(route.headers, headers)) return undefined
  return { route, params }
}

function headersMatch (wanted: ReadonlyArray<readonly [string, string]>, headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of wanted) if (headers[name] !== value) return false
  return true
}
