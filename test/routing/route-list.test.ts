import t from 'tap'
import { compilePathPattern, type PathPattern } from '../../src/routing/path-pattern.ts'
import { RouteList, nextInOrder, orderHeads } from '../../src/routing/route-list.ts'
import type { Matchable } from '../../src/routing/router.ts'

interface Route extends Matchable { readonly name: string }

/**
 * Routes in the order given (`name: path`), whose path patterns note in `tried` each route a
 * request is tried on: which routes the list looked at, not only which one it found.
 */
function counted (specs: ReadonlyArray<readonly [string, string]>): { list: RouteList<Route>, tried: string[] } {
  const tried: string[] = []
  const routes = specs.map(([name, source], index): Route => {
    const pattern = compilePathPattern(source) as PathPattern
    return {
      name,
      index,
      hosts: [],
      path: { ...pattern, match: path => { tried.push(name); return pattern.match(path) } },
      methods: undefined,
      headers: []
    }
  })
  return { list: new RouteList(routes), tried }
}

t.test('routes beginning with params are indexed: a request tries only the routes its segments lead to', async t => {
  const specs: Array<[string, string]> = []
  for (let i = 0; i < 100; i++) specs.push([`svc${i}`, `/:tenant/svc${i}/*`])
  for (let i = 0; i < 50; i++) specs.push([`users${i}`, `/:version/users${i}/:id`])
  specs.push(['tenantAll', '/:tenant/*'])
  const { list, tried } = counted(specs)
  const rows: ReadonlyArray<readonly [string, string | undefined, Record<string, string> | undefined, string[]]> = [
    ['/acme/svc7/orders/1', 'svc7', { tenant: 'acme', '*': 'orders/1' }, ['svc7']],
    ['/acme/svc99', 'svc99', { tenant: 'acme', '*': '' }, ['svc99']],
    ['/v2/users3/7', 'users3', { version: 'v2', id: '7' }, ['users3']],
    ['/v2/users3', 'tenantAll', { tenant: 'v2', '*': 'users3' }, ['tenantAll']],
    ['/acme/nothing', 'tenantAll', { tenant: 'acme', '*': 'nothing' }, ['tenantAll']],
    // A param takes no empty segment: `//svc7` leads nowhere but to the root.
    ['//svc7/x', undefined, undefined, []],
    ['/', undefined, undefined, []]
  ]
  for (const [path, name, params, want] of rows) {
    tried.length = 0
    const m = list.match('GET', path, {})
    t.strictSame([m?.route.name, m?.params, tried], [name, params, want], path)
  }
})

t.test('the routes filed along a request\'s segments, literal and param, are tried in the order given', async t => {
  const specs: Array<[string, string]> = [
    ['apiX', '/api/x'],
    ['twoParams', '/:a/:b'],
    ['other', '/other/:id']
  ]
  for (let i = 0; i < 30; i++) specs.push([`f${i}`, `/f${i}`])
  specs.push(['apiVx', '/api/:v/x'], ['tenantXY', '/:tenant/x/y/*'], ['all', '/*'])
  const { list, tried } = counted(specs)
  const rows: ReadonlyArray<readonly [string, string | undefined, string[]]> = [
    // Not `/api/:v/x`: its third segment is no `y`.
    ['/api/x/y', 'tenantXY', ['apiX', 'twoParams', 'tenantXY']],
    ['/other/7/x', 'all', ['twoParams', 'other', 'all']],
    ['/api/7/x', 'apiVx', ['twoParams', 'apiVx']],
    ['/f3', 'f3', ['f3']]
  ]
  for (const [path, name, want] of rows) {
    tried.length = 0
    t.strictSame([list.match('GET', path, {})?.route.name, tried], [name, want], path)
  }
})

t.test('a list of fewer than 32 routes is walked whole', async t => {
  const specs = (n: number): Array<[string, string]> => Array.from({ length: n }, (_, i) => [`svc${i}`, `/:tenant/svc${i}/*`])
  const short = counted(specs(31))
  t.equal(short.list.match('GET', '/acme/none', {}), undefined)
  t.equal(short.tried.length, 31)
  const long = counted(specs(32))
  t.equal(long.list.match('GET', '/acme/none', {}), undefined)
  t.equal(long.tried.length, 0)
})

/** Every mix of `x` and a param for each of 1 to `depth` segments (`/x/:p2/x`), in a shuffled order. */
function mixes (depth: number): Array<[string, string]> {
  const specs: Array<[string, string]> = []
  for (let d = 1; d <= depth; d++) {
    for (let mix = 0; mix < 1 << d; mix++) {
      const segments = Array.from({ length: d }, (_, i) => (mix & (1 << i)) !== 0 ? `:p${i + 1}` : 'x')
      specs.push([segments.join('/'), '/' + segments.join('/')])
    }
  }
  // Deterministic: neighbours in the tree are far apart in the order, so the merge takes turns among the lists.
  return specs.map((spec, i) => [spec, (i * 7919) % specs.length] as const).sort((a, b) => a[1] - b[1]).map(([spec]) => spec)
}

t.test('a path that leads to every node (every mix of literal and param segments) tries each route it reaches once, in order', async t => {
  const specs = mixes(8)
  t.equal(specs.length, 510)
  const { list, tried } = counted(specs)
  // Nine segments: all 510 routes reached (or those with a param second, for `y`), none matches.
  // Three: the first reached route of three segments matches, after the shorter ones before it.
  for (const path of ['/x/x/x/x/x/x/x/x/x', '/x/y/x/x/x/x/x/x/x', '/x/y/x']) {
    const segments = path.split('/').slice(1)
    const reached = specs.map(([name]) => name.split('/'))
      .filter(route => route.length <= segments.length && route.every((s, i) => s.startsWith(':') || s === segments[i]))
    const first = reached.findIndex(route => route.length === segments.length)
    const want = (first === -1 ? reached : reached.slice(0, first + 1)).map(route => route.join('/'))
    tried.length = 0
    t.equal(list.match('GET', path, {})?.route.name, first === -1 ? undefined : want.at(-1), path)
    t.strictSame(tried, want, path)
  }
  t.strictSame(tried, ['x', 'x/:p2', 'x/:p2/x'], 'from three nodes, in the order given')
})

t.test('the merge reads O(log k) heads a route taken from k lists, not every head', async t => {
  const k = 1024
  const perList = 4
  let reads = 0
  const entry = (order: number) => ({ get order () { reads++; return order } })
  // List i holds i, i + k, ...: each next lowest is at the head of another list.
  const lists = Array.from({ length: k }, (_, i) => Array.from({ length: perList }, (_, j) => entry(((i * 7919) % k) + j * k)))
  const at = orderHeads(lists)
  t.ok(reads <= 3 * k, `${reads} reads to heap ${k} lists`)
  reads = 0
  const orders: number[] = []
  for (let e = nextInOrder(lists, at); e !== undefined; e = nextInOrder(lists, at)) orders.push(e.order)
  reads -= orders.length // the pushes above
  t.strictSame(orders, Array.from({ length: k * perList }, (_, i) => i))
  // A scan of every head would read k each time: 4 million.
  const bound = orders.length * (1 + 2 * Math.log2(k))
  t.ok(reads <= bound, `${reads} reads to take ${orders.length} routes (at most ${bound})`)
})

t.test('the merge of two and three lists, and of lists of different lengths', async t => {
  const run = (lists: number[][]): number[] => {
    const heads = lists.map(l => l.map(order => ({ order })))
    const at = orderHeads(heads)
    const out: number[] = []
    for (let e = nextInOrder(heads, at); e !== undefined; e = nextInOrder(heads, at)) out.push(e.order)
    return out
  }
  t.strictSame(run([[1, 2], [0, 3]]), [0, 1, 2, 3])
  t.strictSame(run([[5], [0, 1, 2, 6], [3, 4]]), [0, 1, 2, 3, 4, 5, 6])
  t.strictSame(run([[0, 9], [1], [2], [3], [4, 5, 6, 7, 8]]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
})
