import t, { type Test } from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { hostMatches, parseHostPattern, type HostPattern } from '../../src/routing/host-pattern.ts'
import { compilePathPattern, type PathPattern } from '../../src/routing/path-pattern.ts'
import { routingForm } from '../../src/routing/normalize-path.ts'
import { Router, type Matchable } from '../../src/routing/router.ts'

interface Route extends Matchable { readonly name: string }
interface Spec { host?: string[], path: string, methods?: string[], headers?: Record<string, string>, index?: number }

/** Routes as the config gives them, in file order unless `index` says otherwise. */
function routes (specs: Record<string, Spec>): Route[] {
  return Object.entries(specs).map(([name, s], i) => ({
    name,
    index: s.index ?? i,
    hosts: (s.host ?? []).map(h => parseHostPattern(h) as HostPattern),
    path: compilePathPattern(s.path) as PathPattern,
    methods: s.methods === undefined ? undefined : new Set(s.methods),
    headers: Object.entries(s.headers ?? {})
  }))
}

/** Row: request as `METHOD host/path` (no host: any), the route it matches (undefined: none), its headers. */
type Row = readonly [string, string | undefined, IncomingHttpHeaders?]

/** The route a walk of every route in precedence order gives: what the indexed lists must give. */
function walk (ordered: readonly Route[], host: string, method: string, path: string, headers: IncomingHttpHeaders): string | undefined {
  return ordered.find(r =>
    (r.hosts.length === 0 || r.hosts.some(h => hostMatches(h, host))) &&
    (r.methods === undefined || r.methods.has(method)) && r.path.match(routingForm(path)) !== undefined &&
    r.headers.every(([n, v]) => headers[n] === v))?.name
}

function expectRoutes (t: Test, router: Router<Route>, rows: readonly Row[]) {
  for (const [request, want, headers = {}] of rows) {
    const [method = '', target = ''] = request.split(' ')
    const slash = target.indexOf('/')
    t.equal(router.match(target.slice(0, slash), method, target.slice(slash), headers)?.route.name, want, `${request} ${JSON.stringify(headers)}`)
  }
}

t.test('a match gives the route and its params', async t => {
  const router = new Router(routes({
    account: { path: '/accounts/:id/*' },
    user: { path: '/users/:id' },
    exact: { path: '/health' }
  }))
  const got = router.match('', 'GET', '/accounts/7/orders/1', {})
  t.equal(got?.route.name, 'account')
  t.strictSame(got?.params, { id: '7', '*': 'orders/1' })
  t.strictSame(router.match('', 'GET', '/users/ann', {})?.params, { id: 'ann' })
  t.strictSame(router.match('', 'GET', '/health', {})?.params, {})
  t.equal(router.match('', 'GET', '/nothing', {}), undefined)
  t.equal(new Router<Route>([]).match('', 'GET', '/', {}), undefined)
})

t.test('host precedence: exact host, then wildcards (longest suffix first), then any host', async t => {
  const router = new Router(routes({
    anyExact: { path: '/x' },
    wildShort: { host: ['*.example.com'], path: '/*' },
    wildLong: { host: ['*.api.example.com'], path: '/*' },
    wildLonger: { host: ['*.v2.api.example.com'], path: '/v2' },
    exactHost: { host: ['a.api.example.com'], path: '/special' },
    twoHosts: { host: ['one.test', 'Two.Test'], path: '/*' },
    otherExact: { host: ['b.test'], path: '/b' }
  }))
  expectRoutes(t, router, [
    ['GET a.api.example.com/special', 'exactHost'],
    // The exact host's routes do not match: on to the wildcards, then to any host.
    ['GET a.api.example.com/x', 'wildLong'],
    ['GET b.api.example.com/special', 'wildLong'],
    ['GET c.example.com/x', 'wildShort'],
    // The longest wildcard's routes do not match: on to the next wildcard.
    ['GET a.v2.api.example.com/v2', 'wildLonger'],
    ['GET a.v2.api.example.com/x', 'wildLong'],
    ['GET example.com/x', 'anyExact'],
    ['GET example.com/y', undefined],
    ['GET evilexample.com/x', 'anyExact'],
    ['GET evilexample.com/y', undefined],
    // A wildcard takes whole labels: not its suffix alone, nor a host whose label before it is empty.
    ['GET .example.com/y', undefined],
    ['GET .api.example.com/y', 'wildShort'],
    ['GET a..example.com/y', undefined],
    ['GET one.test/x', 'twoHosts'],
    ['GET two.test/x', 'twoHosts'],
    ['GET three.test/y', undefined],
    ['GET b.test/b', 'otherExact'],
    ['GET b.test/x', 'anyExact'],
    ['GET /b', undefined],
    ['GET /x', 'anyExact']
  ])
})

t.test('routes of one host, or one wildcard, are ordered together by path', async t => {
  const router = new Router(routes({
    exactAll: { host: ['a.test'], path: '/*' },
    exactUsers: { host: ['a.test'], path: '/users' },
    wildAll: { host: ['*.b.test'], path: '/*' },
    wildUsers: { host: ['*.b.test'], path: '/users' },
    anyAll: { path: '/*' },
    anyUsers: { path: '/users' }
  }))
  expectRoutes(t, router, [
    ['GET a.test/users', 'exactUsers'],
    ['GET a.test/x', 'exactAll'],
    ['GET x.b.test/users', 'wildUsers'],
    ['GET x.b.test/x', 'wildAll'],
    ['GET c.test/users', 'anyUsers'],
    ['GET c.test/x', 'anyAll']
  ])
})

t.test('path precedence: exact, params, prefix; longer literal; more segments', async t => {
  const router = new Router(routes({
    root: { path: '/*' },
    users: { path: '/users/*' },
    userStar: { path: '/users/:id/*' },
    user: { path: '/users/:id' },
    me: { path: '/users/me' },
    usersAdmin: { path: '/users/admin/*' },
    oneParam: { path: '/:a/*' },
    twoParams: { path: '/:a/:b/*' }
  }))
  expectRoutes(t, router, [
    ['GET /users/me', 'me'],
    ['GET /users/7', 'user'],
    ['GET /users/admin', 'user'],
    ['GET /users/7/', 'userStar'],
    ['GET /users/7/orders/1', 'userStar'],
    ['GET /users/me/x', 'userStar'],
    ['GET /users/admin/x', 'usersAdmin'],
    ['GET /users', 'users'],
    ['GET /users/', 'users'],
    ['GET /usersx', 'oneParam'],
    ['GET /x/y/z', 'twoParams'],
    ['GET /x/y', 'twoParams'],
    ['GET /', 'root']
  ])
})

t.test('methods, then header conditions, then file order', async t => {
  const router = new Router(routes({
    plain: { path: '/m' },
    twoHeaders: { path: '/m', headers: { 'x-a': '1', 'x-b': '2' } },
    oneHeader: { path: '/m', headers: { 'x-a': '1' } },
    get: { path: '/m', methods: ['GET', 'HEAD'] },
    postHeader: { path: '/m', methods: ['POST'], headers: { 'x-a': '1' } },
    post: { path: '/m', methods: ['POST'] },
    putFirst: { path: '/m', methods: ['PUT', 'PATCH'] },
    putSecond: { path: '/m', methods: ['PUT'] }
  }))
  expectRoutes(t, router, [
    ['GET /m', 'get'],
    ['HEAD /m', 'get'],
    ['GET /m', 'get', { 'x-a': '1', 'x-b': '2' }],
    ['DELETE /m', 'plain'],
    ['DELETE /m', 'oneHeader', { 'x-a': '1' }],
    ['DELETE /m', 'twoHeaders', { 'x-a': '1', 'x-b': '2' }],
    ['DELETE /m', 'oneHeader', { 'x-a': '1', 'x-b': '3' }],
    ['DELETE /m', 'plain', { 'x-b': '2' }],
    ['DELETE /m', 'plain', { 'x-a': '2', 'x-b': '2' }],
    // A header sent twice is no exact value.
    ['DELETE /m', 'plain', { 'x-a': ['1', '1'] }],
    ['POST /m', 'postHeader', { 'x-a': '1' }],
    ['POST /m', 'post'],
    ['PUT /m', 'putFirst'],
    ['PATCH /m', 'putFirst']
  ])
  const onlyPost = new Router(routes({ post: { path: '/p', methods: ['POST'] } }))
  expectRoutes(t, onlyPost, [['GET /p', undefined], ['POST /p', 'post']])
})

t.test('ties go by position in the config file, whatever the order routes are given in', async t => {
  const router = new Router(routes({
    second: { path: '/x', index: 1 },
    first: { path: '/x', index: 0 },
    // More header conditions win over an earlier position.
    lateHeader: { path: '/h', headers: { 'x-a': '1' }, index: 3 },
    earlyPlain: { path: '/h', index: 2 },
    lateMethod: { path: '/g', methods: ['GET'], index: 5 },
    earlyAny: { path: '/g', index: 4 }
  }))
  expectRoutes(t, router, [
    ['GET /x', 'first'],
    ['GET /h', 'lateHeader', { 'x-a': '1' }],
    ['GET /h', 'earlyPlain'],
    ['GET /g', 'lateMethod'],
    ['POST /g', 'earlyAny']
  ])
})

t.test('ordered: exact hosts by name, then wildcards (longest suffix first), then any host; each route once', async t => {
  const router = new Router(routes({
    anyAll: { path: '/*' },
    zHost: { host: ['z.test'], path: '/*' },
    wildShort: { host: ['*.test'], path: '/*' },
    both: { host: ['m.test', 'a.test'], path: '/both' },
    aHost: { host: ['a.test'], path: '/a/*' },
    wildLong: { host: ['*.long.test'], path: '/*' },
    anyUsers: { path: '/users' },
    wildBoth: { host: ['*.x.test', '*.y.test'], path: '/*' },
    // Exact paths before params before prefixes, whatever their literal text.
    anyParam: { path: '/users/:id' },
    anyShort: { path: '/u' },
    anyLongPrefix: { path: '/users/admin/all/*' }
  }))
  t.strictSame(router.ordered().map(r => r.name),
    ['both', 'aHost', 'zHost', 'wildLong', 'wildBoth', 'wildShort', 'anyUsers', 'anyShort', 'anyParam', 'anyLongPrefix', 'anyAll'])
})

t.test('many routes (indexed by their segments): the same route as a walk of every route in precedence order', async t => {
  const specs: Record<string, Spec> = {
    catchAll: { path: '/*' },
    root: { path: '/' },
    tenant: { path: '/:tenant/x' },
    tenantAll: { path: '/:tenant/*', methods: ['POST'] },
    users: { path: '/users/*' },
    me: { path: '/users/me' },
    userId: { path: '/users/:id' },
    usersBeta: { path: '/users/*', headers: { 'x-beta': '1' } },
    colon: { path: '/v1:x/*' },
    apiHost: { host: ['api.example.com'], path: '/users/*' },
    wildHost: { host: ['*.example.com'], path: '/:a/*' },
    // `//*` is `/*`; `/users//*` takes `/users/` (and `/users//...`, which no normalized path has).
    slashAll: { path: '//*', methods: ['DELETE'] },
    usersSlashAll: { path: '/users//*', methods: ['DELETE'] },
    tenantTrailing: { path: '/:tenant/', methods: ['DELETE'] },
    tenantTrailingAll: { path: '/:tenant//*', methods: ['PUT'] }
  }
  for (let i = 0; i < 60; i++) specs[`svc${i}`] = { path: i % 3 === 0 ? `/svc-${i}` : `/svc-${i}/*` }
  // Sharing their first segments: filed under their whole literal prefix.
  for (let i = 0; i < 40; i++) specs[`api${i}`] = { path: i % 2 === 0 ? `/api/v1/svc-${i}/:id/*` : `/api/v1/svc-${i}/:id` }
  // Beginning with params: filed under them, and the literal segments after them.
  for (let i = 0; i < 40; i++) specs[`tenantSvc${i}`] = { path: i % 2 === 0 ? `/:tenant/svc-${i}/*` : `/:version/svc-${i}/:id`, methods: i % 4 === 1 ? ['POST'] : undefined }
  specs.twoParamsSvc = { path: '/:a/:b/svc-1/*' }
  specs.apiAll = { path: '/api/*' }
  specs.apiV1Id = { path: '/api/v1/:name' }
  specs.trailing = { path: '/users/' }
  const all = routes(specs)
  const router = new Router(all)
  const ordered = router.ordered()
  t.equal(ordered.length, all.length)
  const paths = ['', '/', '//', '/users', '/users/', '/users//', '/users//x', '/users/me', '/users/7', '/users/7/x', '/x', '/x/', '/t1/x', '/t1/y', '/t1//', '/t1//x',
    '/v1:x', '/v1:x/a', '/v1%3Ax/a', 'svc-3', '/svc-3', '/svc-3/a', '/svc-4', '/svc-4/a/b', '/svc-59/', '/svc-60', '/nowhere/at/all',
    '/api', '/api/v1', '/api/v1/svc-2', '/api/v1/svc-2/7', '/api/v1/svc-2/7/x', '/api/v1/svc-3/7', '/api/v1/svc-3/7/x', '/api/v1/svc-99/7', '/api/v2/x',
    '/acme/svc-2', '/acme/svc-2/', '/acme/svc-2/x', '/v2/svc-3/7', '/v2/svc-3/7/', '/v2/svc-5/7', '/svc-3/svc-3/svc-3', '/a/b/svc-1', '/a/b/svc-1/x', '/a//svc-1', '//svc-2/x', '/users/svc-2']
  for (const host of ['', 'gw.test', 'api.example.com', 'a.example.com']) {
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
      for (const path of paths) {
        for (const headers of [{}, { 'x-beta': '1' }]) {
          t.equal(router.match(host, method, path, headers)?.route.name, walk(ordered, host, method, path, headers), `${method} ${host}${path} ${JSON.stringify(headers)}`)
        }
      }
    }
  }
})

t.test('many generated routes: the same route as a walk of every route in precedence order', async t => {
  // Deterministic (mulberry32): a failure names its request, and comes back on every run.
  let seed = 20240611
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), seed | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T
  const literals = ['a', 'b', 'svc1', 'x:y', 'A', 'a.b']
  const specs: Record<string, Spec> = {}
  let n = 0
  while (n < 400) {
    const segments: string[] = []
    const length = random() < 0.05 ? 0 : 1 + Math.floor(random() * 4)
    for (let i = 0; i < length; i++) segments.push(random() < 0.4 ? `:p${i}` : pick(literals))
    const end = random()
    // A prefix, a trailing slash (an empty last segment), or neither.
    if (end < 0.4) segments.push('*')
    else if (end < 0.55) segments.push('')
    else if (end < 0.6) segments.push('', '*')
    const path = '/' + segments.join('/')
    if (typeof compilePathPattern(path) === 'string') continue
    specs[`r${n}`] = {
      path,
      host: random() < 0.1 ? [pick(['a.test', '*.test'])] : undefined,
      methods: random() < 0.2 ? [pick(['GET', 'POST'])] : undefined,
      headers: random() < 0.1 ? { 'x-a': '1' } : undefined,
      index: Math.floor(random() * 1000)
    }
    n++
  }
  const router = new Router(routes(specs))
  const ordered = router.ordered()
  const paths = new Set(['', '/', '//', 'a', 'a/b', '/a//', '/a//b', '//a', '/a/', '/x%3Ay', '/x%3Ay/a', '/a/b/c/d/e/f', '/%41'])
  while (paths.size < 400) {
    const segments: string[] = []
    const length = Math.floor(random() * 6)
    for (let i = 0; i < length; i++) segments.push(pick([...literals, 'zz', '', 'svc1']))
    paths.add('/' + segments.join('/'))
  }
  const wrong: string[] = []
  const winners = new Set<string | undefined>()
  for (const host of ['', 'a.test', 'b.test']) {
    for (const method of ['GET', 'POST']) {
      for (const path of paths) {
        for (const headers of [{}, { 'x-a': '1' }]) {
          const got = router.match(host, method, path, headers)?.route.name
          const want = walk(ordered, host, method, path, headers)
          if (got !== want) wrong.push(`${method} ${host}${path} ${JSON.stringify(headers)}: ${String(got)}, not ${String(want)}`)
          winners.add(want)
        }
      }
    }
  }
  t.strictSame(wrong, [])
  // The requests reach many of the generated routes, not only the catch-alls.
  t.ok(winners.size > 100, `${winners.size} routes matched`)
})

t.test('every mix of literal and param segments (a path reaches many lists): the same route as a walk in precedence order', async t => {
  const specs: Record<string, Spec> = {}
  for (let d = 1; d <= 6; d++) {
    for (let mix = 0; mix < 1 << d; mix++) {
      const path = '/' + Array.from({ length: d }, (_, i) => (mix & (1 << i)) !== 0 ? `:p${i + 1}` : 'x').join('/')
      // Some taken only by POST, some prefixes: many lists, each with routes that do not all match.
      specs[path] = { path, methods: mix % 3 === 1 ? ['POST'] : undefined }
      if (mix % 5 === 2) specs[`${path}/*`] = { path: `${path}/*`, methods: mix % 2 === 0 ? ['POST'] : undefined }
    }
  }
  const router = new Router(routes(specs))
  const ordered = router.ordered()
  const paths = ['']
  for (let length = 1; length <= 7; length++) {
    for (let mix = 0; mix < 1 << length; mix++) paths.push('/' + Array.from({ length }, (_, i) => (mix & (1 << i)) !== 0 ? 'y' : 'x').join('/'))
  }
  const wrong: string[] = []
  const winners = new Set<string | undefined>()
  for (const method of ['GET', 'POST']) {
    for (const path of paths) {
      const got = router.match('', method, path, {})?.route.name
      const want = walk(ordered, '', method, path, {})
      if (got !== want) wrong.push(`${method} ${path}: ${String(got)}, not ${String(want)}`)
      winners.add(want)
    }
  }
  t.strictSame(wrong, [])
  t.ok(winners.size > 100, `${winners.size} routes matched`)
})
