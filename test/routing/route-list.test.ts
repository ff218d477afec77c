import t from 'tap'
import { compilePathPattern, type PathPattern } from '../../src/routing/path-pattern.ts'
import { RouteList } from '../../src/routing/route-list.ts'
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
