import type { IncomingHttpHeaders } from 'node:http'
import type { Matchable, RouteMatch } from './router.ts'

/** Below this many routes a list is walked whole: an index would cost more than it saves. */
const INDEXED_FROM = 32

interface Entry<R> { readonly route: R, readonly order: number }
interface Ordered { readonly order: number }

/**
 * A node of the index, one path segment down from its parent: the routes whose patterns' segments
 * (path-pattern.ts) end here, and the nodes one segment further, by literal text and for a param.
 */
interface Node<R> {
  routes: Array<Entry<R>> | undefined
  literal: Map<string, Node<R>> | undefined
  param: Node<R> | undefined
}

/**
 * Routes in precedence order, and the first that takes a request. A long list is indexed by the
 * patterns' segments up to the `*` (`/:tenant/orders` of `/:tenant/orders/*`), in a tree of
 * literal text and params: a route can only match a path whose segments begin as its own do, so a
 * request tries only the routes filed at a node its segments lead to (down the literal child named
 * as the segment, and the param child when the segment is not empty), merged in precedence order,
 * not every route (6,000 routes cost 120 µs to milliseconds a request walked whole).
 */
export class RouteList<R extends Matchable> {
  readonly routes: readonly R[]
  readonly #index: Node<R> | undefined

  /** `routes`: in precedence order. */
  constructor (routes: readonly R[]) {
    this.routes = routes
    if (routes.length < INDEXED_FROM) return
    const root = newNode<R>()
    routes.forEach((route, order) => {
      let node = root
      for (const segment of route.path.segments) node = child(node, segment)
      ;(node.routes ??= []).push({ route, order })
    })
    this.#index = root
  }

  /**
   * The first route that takes the request. Given `allowed`, none: the methods of every route that
   * takes it but for its method go into `allowed` (see Router.allowedMethods).
   */
  match (method: string, path: string, headers: IncomingHttpHeaders, allowed?: Set<string>): RouteMatch<R> | undefined {
    const index = this.#index
    if (index === undefined) {
      const routes = this.routes
      for (let i = 0; i < routes.length; i++) {
        const m = tryRoute(routes[i] as R, method, path, headers, allowed)
        if (m !== undefined) return m
      }
      return undefined
    }
    // The lists filed at the nodes the path's segments lead to. Every pattern begins with a slash.
    const lists: Array<ReadonlyArray<Entry<R>>> = []
    collect(index, path, path.charCodeAt(0) === 47 ? 1 : -1, lists)
    if (lists.length === 1) {
      const list = lists[0] as ReadonlyArray<Entry<R>>
      for (let i = 0; i < list.length; i++) {
        const m = tryRoute((list[i] as Entry<R>).route, method, path, headers, allowed)
        if (m !== undefined) return m
      }
      return undefined
    }
    // Merged in precedence order: the lowest order at the heads of the lists, from a heap of them.
    const at = orderHeads(lists)
    for (let e = nextInOrder(lists, at); e !== undefined; e = nextInOrder(lists, at)) {
      const m = tryRoute(e.route, method, path, headers, allowed)
      if (m !== undefined) return m
    }
    return undefined
  }
}

function newNode<R> (): Node<R> {
  return { routes: undefined, literal: undefined, param: undefined }
}

/** The node one segment down from `node`: `segment`'s literal child, or its param child (undefined). */
function child<R> (node: Node<R>, segment: string | undefined): Node<R> {
  if (segment === undefined) return (node.param ??= newNode())
  const literal = (node.literal ??= new Map())
  let next = literal.get(segment)
  if (next === undefined) literal.set(segment, next = newNode())
  return next
}

/**
 * Pushes the routes of `node` and of the nodes below it that the segments of `path` from `start`
 * lead to (-1: no segment left). A param takes one non-empty segment, as in the matcher. A node
 * is reached by its parent only, so a request visits each node once at most: the index's size bounds it.
 */
function collect<R> (node: Node<R>, path: string, start: number, lists: Array<ReadonlyArray<Entry<R>>>): void {
  if (node.routes !== undefined) lists.push(node.routes)
  if (start === -1 || (node.literal === undefined && node.param === undefined)) return
  const slash = path.indexOf('/', start)
  const end = slash === -1 ? path.length : slash
  const next = slash === -1 ? -1 : slash + 1
  const literal = node.literal?.get(path.slice(start, end))
  if (literal !== undefined) collect(literal, path, next, lists)
  if (node.param !== undefined && end > start) collect(node.param, path, next, lists)
}

/** `allowed`: see RouteList.match; a route without methods adds none (it takes any: match() would have returned it). */
function tryRoute<R extends Matchable> (route: R, method: string, path: string, headers: IncomingHttpHeaders, allowed: Set<string> | undefined): RouteMatch<R> | undefined {
  if (allowed === undefined && route.methods !== undefined && !route.methods.has(method)) return undefined
  const params = route.path.match(path)
  if (params === undefined) return undefined
  if (route.headers.length > 0 && !headersMatch(route.headers, headers)) return undefined
  if (allowed === undefined) return { route, params }
  for (const m of route.methods ?? []) allowed.add(m)
  return undefined
}

function headersMatch (wanted: ReadonlyArray<readonly [string, string]>, headers: IncomingHttpHeaders): boolean {
  for (const [name, value] of wanted) if (headers[name] !== value) return false
  return true
}

/**
 * Makes `lists` (each in order, none empty) a binary min-heap by the order of their heads, and
 * gives the position of each head, kept beside its list as the heap moves it: a merge costs
 * O(log k) a route tried for k lists, not k (a path the client picks can reach thousands of lists).
 * Exported for the tests, which count the orders read.
 */
export function orderHeads<E extends Ordered> (lists: Array<ReadonlyArray<E>>): number[] {
  const at = new Array<number>(lists.length).fill(0)
  for (let i = (lists.length >> 1) - 1; i >= 0; i--) siftDown(lists, at, i)
  return at
}

/** The lowest head of the lists heaped by orderHeads, taken from its list; undefined when all are done. */
export function nextInOrder<E extends Ordered> (lists: Array<ReadonlyArray<E>>, at: number[]): E | undefined {
  const list = lists[0]
  if (list === undefined) return undefined
  const pos = at[0] as number
  const head = list[pos] as E
  at[0] = pos + 1
  if (pos + 1 === list.length) {
    // Done with: the last list of the heap takes its place at the top.
    const last = lists.pop() as ReadonlyArray<E>
    const lastAt = at.pop() as number
    if (lists.length === 0) return head
    lists[0] = last
    at[0] = lastAt
  }
  siftDown(lists, at, 0)
  return head
}

/** Moves the list at `i` down the heap, below the lower of its children while that one's head is lower. */
function siftDown<E extends Ordered> (lists: Array<ReadonlyArray<E>>, at: number[], i: number): void {
  const n = lists.length
  const list = lists[i] as ReadonlyArray<E>
  const pos = at[i] as number
  const order = (list[pos] as E).order
  for (;;) {
    let c = 2 * i + 1
    if (c >= n) break
    let lower = ((lists[c] as ReadonlyArray<E>)[at[c] as number] as E).order
    if (c + 1 < n) {
      const right = ((lists[c + 1] as ReadonlyArray<E>)[at[c + 1] as number] as E).order
      if (right < lower) { c++; lower = right }
    }
    if (lower > order) break
    lists[i] = lists[c] as ReadonlyArray<E>
    at[i] = at[c] as number
    i = c
  }
  lists[i] = list
  at[i] = pos
}
