import t, { type Test } from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { Client } from 'undici'
import { echo, startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'

interface Seen { url: string, headers: IncomingHttpHeaders }
interface Answer { status: number, route: string | undefined, url: string | undefined, error: string | undefined }
interface Ask { method?: string, path: string, headers?: Record<string, string> }

/**
 * A real gateway whose routes each have their own upstream, named like the route, which records
 * what it received and says who it is in `x-upstream`. `routes` maps a route name to its YAML
 * (match, rewrite, plugins...); upstream and name are added.
 */
async function routedGateway (t: Test, routes: Record<string, string>) {
  const seen = new Map<string, Seen[]>()
  const ups = await Promise.all(Object.keys(routes).map(name => {
    seen.set(name, [])
    return startUpstream((req, res) => {
      seen.get(name)?.push({ url: req.url as string, headers: req.headers })
      res.setHeader('x-upstream', name)
      echo(req, res)
    })
  }))
  const names = Object.keys(routes)
  const gw = await startGateway(`
upstreams:
${names.map((n, i) => `  ${n}: { targets: [ { url: "${ups[i]?.url}" } ] }`).join('\n')}
routes:
${Object.entries(routes).map(([n, spec]) => `  - name: ${n}\n    upstream: ${n}\n${spec.trim().replace(/^\s*/gm, '    ')}`).join('\n')}
`)
  // undici's Client sends the path exactly as given (request() would normalize it through URL).
  const client = new Client(gw.url)
  t.teardown(async () => {
    await client.close()
    await gw.close()
    await Promise.all(ups.map(u => u.close()))
  })
  const ask = async ({ method = 'GET', path, headers }: Ask): Promise<Answer> => {
    const res = await client.request({ method, path, headers })
    const text = await res.body.text()
    const body = text === '' ? {} : JSON.parse(text) as { url?: string, error?: string }
    const route = res.headers['x-upstream'] as string | undefined
    return { status: res.statusCode, route, url: route === undefined ? undefined : body.url, error: body.error }
  }
  /** Asserts which route served each request (undefined: 404). */
  const expectRoutes = async (t: Test, table: ReadonlyArray<readonly [Ask, string | undefined]>) => {
    for (const [req, want] of table) {
      const got = await ask(req)
      t.equal(got.route, want, `${req.method ?? 'GET'} ${req.headers?.host ?? ''}${req.path} ${JSON.stringify(req.headers ?? {})}`)
      if (want === undefined) t.equal(got.status, 404)
    }
  }
  return { gw, ask, expectRoutes, seen }
}

t.test('host precedence: exact host, then wildcard (longest suffix first), then any host', async t => {
  const { expectRoutes } = await routedGateway(t, {
    anyExact: 'match: { path: /x }',
    wildShort: 'match: { host: "*.example.com", path: /* }',
    wildLong: 'match: { host: "*.api.example.com", path: /* }',
    exactHost: 'match: { host: a.api.example.com, path: /special }',
    twoHosts: 'match: { host: [one.test, Two.Test], path: /* }'
  })
  await expectRoutes(t, [
    [{ path: '/special', headers: { host: 'a.api.example.com' } }, 'exactHost'],
    [{ path: '/x', headers: { host: 'a.api.example.com' } }, 'wildLong'],
    [{ path: '/x', headers: { host: 'b.api.example.com' } }, 'wildLong'],
    [{ path: '/special', headers: { host: 'b.api.example.com' } }, 'wildLong'],
    [{ path: '/x', headers: { host: 'c.example.com' } }, 'wildShort'],
    [{ path: '/x', headers: { host: 'example.com' } }, 'anyExact'],
    [{ path: '/y', headers: { host: 'example.com' } }, undefined],
    [{ path: '/x', headers: { host: 'evilexample.com' } }, 'anyExact'],
    [{ path: '/y', headers: { host: 'evilexample.com' } }, undefined],
    [{ path: '/special', headers: { host: 'A.API.Example.COM.:8080' } }, 'exactHost'],
    [{ path: '/x', headers: { host: 'Deep.B.Api.Example.com:443' } }, 'wildLong'],
    [{ path: '/x', headers: { host: 'one.test' } }, 'twoHosts'],
    [{ path: '/x', headers: { host: 'two.test.' } }, 'twoHosts'],
    [{ path: '/y', headers: { host: 'three.test' } }, undefined]
  ])
})

t.test('path precedence: exact, params, prefix; longer literal; more segments', async t => {
  const { expectRoutes } = await routedGateway(t, {
    root: 'match: { path: /* }',
    users: 'match: { path: /users/* }',
    userStar: 'match: { path: "/users/:id/*" }',
    user: 'match: { path: "/users/:id" }',
    me: 'match: { path: /users/me }',
    usersAdmin: 'match: { path: /users/admin/* }'
  })
  await expectRoutes(t, [
    [{ path: '/users/me' }, 'me'],
    [{ path: '/users/7' }, 'user'],
    [{ path: '/users/admin' }, 'user'],
    [{ path: '/users/7/' }, 'userStar'],
    [{ path: '/users/7/orders/1' }, 'userStar'],
    [{ path: '/users/me/x' }, 'userStar'],
    [{ path: '/users/admin/x' }, 'usersAdmin'],
    [{ path: '/users' }, 'users'],
    [{ path: '/users/' }, 'users'],
    [{ path: '/usersx' }, 'root'],
    [{ path: '/' }, 'root'],
    [{ path: '/other/thing' }, 'root']
  ])
})

t.test('prefix /users/* matches /users and below, not /usersx', async t => {
  const { expectRoutes } = await routedGateway(t, { users: 'match: { path: /users/* }' })
  await expectRoutes(t, [
    [{ path: '/users' }, 'users'],
    [{ path: '/users/x' }, 'users'],
    [{ path: '/users/x/y/z' }, 'users'],
    [{ path: '/usersx' }, undefined],
    [{ path: '/user' }, undefined],
    [{ path: '/' }, undefined]
  ])
})

t.test('methods, then header conditions, then file order; GET implies HEAD', async t => {
  const { expectRoutes } = await routedGateway(t, {
    plain: 'match: { path: /m }',
    twoHeaders: 'match: { path: /m, headers: { x-a: "1", x-b: "2" } }',
    oneHeader: 'match: { path: /m, headers: { X-A: "1" } }',
    get: 'match: { path: /m, methods: [get] }',
    postHeader: 'match: { path: /m, methods: [POST], headers: { x-a: "1" } }',
    post: 'match: { path: /m, methods: [POST] }',
    putFirst: 'match: { path: /m, methods: [PUT, PATCH] }',
    // Both take PUT: the one declared first does (putSecond alone would be refused as never used).
    putSecond: 'match: { path: /m, methods: [PUT, OPTIONS] }'
  })
  await expectRoutes(t, [
    [{ path: '/m' }, 'get'],
    [{ method: 'HEAD', path: '/m' }, 'get'],
    [{ path: '/m', headers: { 'x-a': '1', 'x-b': '2' } }, 'get'],
    [{ method: 'DELETE', path: '/m' }, 'plain'],
    [{ method: 'DELETE', path: '/m', headers: { 'X-A': '1' } }, 'oneHeader'],
    [{ method: 'DELETE', path: '/m', headers: { 'x-a': '1', 'x-b': '2' } }, 'twoHeaders'],
    [{ method: 'DELETE', path: '/m', headers: { 'x-a': '1', 'x-b': '3' } }, 'oneHeader'],
    [{ method: 'DELETE', path: '/m', headers: { 'x-a': '2', 'x-b': '2' } }, 'plain'],
    [{ method: 'POST', path: '/m', headers: { 'x-a': '1' } }, 'postHeader'],
    [{ method: 'POST', path: '/m' }, 'post'],
    [{ method: 'PUT', path: '/m' }, 'putFirst'],
    [{ method: 'PATCH', path: '/m' }, 'putFirst'],
    [{ method: 'OPTIONS', path: '/m' }, 'putSecond']
  ])
})

t.test('a route without GET does not take HEAD: 405, the route\'s methods in Allow', async t => {
  const { ask } = await routedGateway(t, { post: 'match: { path: /p, methods: [POST] }' })
  const head = await ask({ method: 'HEAD', path: '/p' })
  t.same([head.route, head.status], [undefined, 405], 'HEAD (no body to tell the code)')
  const get = await ask({ method: 'GET', path: '/p' })
  t.same([get.route, get.status, get.error], [undefined, 405, 'method_not_allowed'], 'GET')
})

t.test('forwarded path: normalized, stripPrefix, rewrite; query string kept as sent', async t => {
  const { ask } = await routedGateway(t, {
    strip: 'match: { path: /api/* }\nstripPrefix: /api',
    account: 'match: { path: "/accounts/:id/*" }\nrewrite: "/v2/accounts/:id/*"',
    profile: 'match: { path: "/people/:id" }\nrewrite: "/users/:id/profile"',
    prefix: 'match: { path: /old/* }\nrewrite: "/v2/*"',
    inner: 'match: { path: "/m/:a/*" }\nrewrite: "/z/*/:a"',
    raw: 'match: { path: /raw/* }',
    colon: 'match: { path: "/v1:x/*" }\nstripPrefix: "/v1:x"',
    method: 'match: { path: "/things/:id/batch" }\nrewrite: "/v2/things/:id%3AbatchGet"'
  })
  const table: Array<[string, string, string]> = [
    ['/api/users/7?x=1&y=%20', 'strip', '/users/7?x=1&y=%20'],
    ['/api', 'strip', '/'],
    ['/api/', 'strip', '/'],
    ['/api/a/', 'strip', '/a/'],
    ['/accounts/7/a/b?q=1', 'account', '/v2/accounts/7/a/b?q=1'],
    ['/accounts/7', 'account', '/v2/accounts/7'],
    ['/accounts/7/', 'account', '/v2/accounts/7/'],
    ['/accounts/7/a/', 'account', '/v2/accounts/7/a/'],
    ['/accounts/%41b%3a%3f/x', 'account', '/v2/accounts/Ab%3A%3F/x'],
    ['/people/ann?fields=a,b', 'profile', '/users/ann/profile?fields=a,b'],
    ['/old', 'prefix', '/v2'],
    ['/old/', 'prefix', '/v2/'],
    ['/m/1/a/b/', 'inner', '/z/a/b/1'],
    ['/raw/%61b/../c?a=1&a=2&b=%2F&c&d=..%2f', 'raw', '/raw/c?a=1&a=2&b=%2F&c&d=..%2f'],
    ['/raw//x/./y?', 'raw', '/raw/x/y?'],
    // Routed on their routingForm, forwarded as sent: the params hold the escapes, a prefix is taken off by segments.
    ['/accounts/a%40b%2Bc/x%3Ay', 'account', '/v2/accounts/a%40b%2Bc/x%3Ay'],
    ['/v1%3Ax/y%3Az', 'colon', '/y%3Az'],
    ['/v1:x/y', 'colon', '/y'],
    ['/v1%3Ax', 'colon', '/'],
    ['/things/a%2Bb/batch', 'method', '/v2/things/a%2Bb%3AbatchGet']
  ]
  for (const [path, route, forwarded] of table) {
    const got = await ask({ path })
    t.same([got.route, got.url], [route, forwarded], path)
  }
})

t.test('absolute-form request target: the URL authority is the host', async t => {
  const { ask } = await routedGateway(t, {
    exactHost: 'match: { host: api.example.com, path: /special }',
    other: 'match: { path: /* }'
  })
  t.same(await ask({ path: 'http://api.example.com/special?q=1', headers: { host: 'ignored.test' } }),
    { status: 200, route: 'exactHost', url: '/special?q=1', error: undefined })
  t.same(await ask({ path: 'http://API.example.com:8080/special' }), { status: 200, route: 'exactHost', url: '/special', error: undefined })
  t.equal((await ask({ path: 'http://elsewhere.test/special' })).route, 'other')
  t.equal((await ask({ path: 'http://api.example.com/special\\x' })).error, 'bad_path', 'the path is judged raw, not by a URL parser')
  t.same(await ask({ path: 'http://api.example.com?q=1' }), { status: 200, route: 'other', url: '/?q=1', error: undefined })
})

t.test('absolute-form: the upstream sees the host the route matched, not the Host header', async t => {
  const { ask, seen } = await routedGateway(t, {
    public: 'match: { host: public.example.com, path: /* }\npreserveHost: true',
    admin: 'match: { host: admin.example.com, path: /* }\nplugins: { request-headers: { set: { x-guard: "on" } } }'
  })
  const got = await ask({ path: 'http://public.example.com/secret', headers: { host: 'admin.example.com' } })
  t.equal(got.route, 'public')
  const headers = seen.get('public')?.[0]?.headers
  t.equal(headers?.host, 'public.example.com', 'Host sent upstream (preserveHost) is the matched host')
  t.equal(headers?.['x-forwarded-host'], 'public.example.com', 'so is X-Forwarded-Host')
})

t.test('an escape of a character a path holds as it is (:, $, @...) reaches the route written with it, and its plugins; forwarded as sent', async t => {
  const { ask, seen } = await routedGateway(t, {
    reset: 'match: { path: "/v1/admin:reset" }\nplugins: { request-headers: { set: { x-guard: "on" } } }',
    odata: 'match: { path: "/odata/$metadata" }\nplugins: { request-headers: { set: { x-guard: "on" } } }',
    at: 'match: { path: "/@admin/*" }\nplugins: { request-headers: { set: { x-guard: "on" } } }',
    public: 'match: { path: /* }'
  })
  for (const [path, route, url] of [['/v1/admin%3Areset', 'reset', '/v1/admin%3Areset'], ['/v1/admin%3areset', 'reset', '/v1/admin%3Areset'],
    ['/odata/%24metadata', 'odata', '/odata/%24metadata'], ['/%40admin/x', 'at', '/%40admin/x'], ['/v1/admin:reset', 'reset', '/v1/admin:reset']] as const) {
    const got = await ask({ path, headers: { 'x-guard': 'off' } })
    t.same([got.status, got.route, got.url], [200, route, url], path)
  }
  t.same(seen.get('public'), [], 'nothing was served by the public route')
  t.ok([...seen.values()].flat().every(s => s.headers['x-guard'] === 'on'), 'each went through its route\'s plugin')
})

t.test('path tricks cannot reach /admin without its plugin', async t => {
  const { ask, seen } = await routedGateway(t, {
    admin: 'match: { path: /admin/* }\nplugins: { request-headers: { set: { x-guard: "on" } } }',
    public: 'match: { path: /public/* }'
  })
  const reachAdmin = [
    '/admin/x', '/public/../admin/x', '/public/%2e%2e/admin/x', '/public/.%2E/admin/x', '/%61dmin/x', '/%61%64%6D%69%6E/x',
    '//admin/x', '/admin//x', '/public/./../admin/./x', '/public/x/../../admin/x', 'http://gw.test/public/../admin/x'
  ]
  const rejected = [
    '/public/..%2fadmin/x', '/public/..%2Fadmin/x', '/public/..;/admin/x', '/public/..%3B/admin/x', '/public/.;/../admin/x', '/admin%2fx',
    '/public\\..\\admin/x', '/admin\\x', '/public/..%5cadmin/x', '/public/%2e%2e%00/admin/x', '/admin;x/x', '/admin%3Bx/x', '/admin;/x'
  ]
  for (const path of reachAdmin) {
    const got = await ask({ path, headers: { 'x-guard': 'off' } })
    t.same([got.status, got.route, got.url], [200, 'admin', '/admin/x'], path)
  }
  for (const path of rejected) {
    const got = await ask({ path })
    t.same([got.status, got.route, got.error], [400, undefined, 'bad_path'], path)
  }
  // Fastify's router refuses a malformed escape before the gateway sees it: still a 400, with the generic code.
  const badEscape = await ask({ path: '/public/%zz/../admin/x' })
  t.same([badEscape.status, badEscape.route, badEscape.error], [400, undefined, 'bad_path'], 'malformed escape')
  const admin = seen.get('admin') ?? []
  t.equal(admin.length, reachAdmin.length, 'only the normalized requests reached the admin upstream')
  t.ok(admin.every(s => s.headers['x-guard'] === 'on' && s.url === '/admin/x'), 'each went through the admin plugin, with the normalized path')
  t.same(seen.get('public'), [], 'nothing was served by the public route')
})
