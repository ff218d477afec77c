import t from 'tap'
import { compilePathPattern, compileRewrite, splitTemplate, type PathPattern } from '../../src/routing/path-pattern.ts'

const compiled = (source: string): PathPattern => {
  const p = compilePathPattern(source)
  if (typeof p === 'string') throw new Error(`${source}: ${p}`)
  return p
}

/** Pattern → [request path, params, or undefined when it does not match]. */
const MATCHES: Record<string, ReadonlyArray<readonly [string, Record<string, string> | undefined]>> = {
  '/users': [['/users', {}], ['/users/', undefined], ['/usersx', undefined], ['/user', undefined], ['/', undefined]],
  '/users/': [['/users/', {}], ['/users', undefined]],
  '/': [['/', {}], ['/x', undefined]],
  '/users/*': [
    ['/users', { '*': '' }], ['/users/', { '*': '' }], ['/users/a', { '*': 'a' }], ['/users/a/b/', { '*': 'a/b/' }],
    ['/usersx', undefined], ['/usersx/a', undefined], ['/user', undefined], ['/', undefined], ['/x/users/a', undefined]
  ],
  '/a/b/*': [['/a/b', { '*': '' }], ['/a/b/c', { '*': 'c' }], ['/a', undefined], ['/a/bc', undefined]],
  '/*': [['/', { '*': '' }], ['/a', { '*': 'a' }], ['/a/b', { '*': 'a/b' }]],
  '/users/:id': [
    ['/users/7', { id: '7' }], ['/users/a.b', { id: 'a.b' }], ['/users/', undefined], ['/users', undefined],
    ['/users/7/', undefined], ['/users/7/x', undefined], ['/x/users/7', undefined], ['/usersx/7', undefined]
  ],
  '/:a/:b': [['/x/y', { a: 'x', b: 'y' }], ['/x', undefined], ['/x/y/z', undefined]],
  // A param is a whole segment: `a:b` is literal text.
  '/a:b': [['/a:b', {}], ['/x', undefined]],
  '/users/:id/orders': [['/users/7/orders', { id: '7' }], ['/users/7/orders/', undefined], ['/users/7/ordersx', undefined]],
  '/users/:id/*': [
    ['/users/7', { id: '7', '*': '' }], ['/users/7/', { id: '7', '*': '' }], ['/users/7/a/b', { id: '7', '*': 'a/b' }],
    ['/users', undefined], ['/users/', undefined], ['/users/7x', { id: '7x', '*': '' }], ['/x/users/7', undefined]
  ],
  '/:id/*': [['/7', { id: '7', '*': '' }], ['/7/a', { id: '7', '*': 'a' }], ['/', undefined]],
  // Literal text is matched as text, never as a regular expression.
  '/a.b/:id': [['/a.b/1', { id: '1' }], ['/aXb/1', undefined]],
  '/v1+/:id': [['/v1+/1', { id: '1' }], ['/v11/1', undefined], ['/v1/1', undefined]],
  '/d/:id': [['/d/1', { id: '1' }], ['/1/1', undefined]],
  '/(a)/:id': [['/(a)/1', { id: '1' }], ['/a/1', undefined]],
  '/$x/:id': [['/$x/1', { id: '1' }], ['/x/1', undefined]]
}

for (const [source, table] of Object.entries(MATCHES)) {
  t.test(`match: ${source}`, async t => {
    const p = compiled(source)
    t.equal(p.source, source)
    for (const [path, want] of table) t.strictSame(p.match(path), want, path)
  })
}

t.test('params, in order, "*" last; the literal text before the first param or wildcard', async t => {
  const table: ReadonlyArray<readonly [string, string[], string]> = [
    ['/users', [], '/users'],
    ['/', [], '/'],
    ['/*', ['*'], '/'],
    ['/users/*', ['*'], '/users'],
    ['/a/b/*', ['*'], '/a/b'],
    ['/users/:id', ['id'], '/users'],
    ['/users/:id/orders/:order/*', ['id', 'order', '*'], '/users'],
    ['/:a/x', ['a'], '/']
  ]
  for (const [source, params, literalPrefix] of table) {
    const p = compiled(source)
    t.strictSame([p.params, p.literalPrefix], [params, literalPrefix], source)
  }
})

t.test('rejected patterns, with their error', async t => {
  const star = (meant: string) => `"*" may only be a whole last segment (did you mean "${meant}"?)`
  const notNormalized = 'not normalized (no //, . or .. segments, or escapes of characters a path holds as they are: letters, digits and -._~!$&\'()*+,=:@)'
  const table: ReadonlyArray<readonly [string, string]> = [
    ['/users*', star('/users/*')],
    ['/users/**', star('/users/*')],
    ['/a/b*', star('/a/b/*')],
    ['/a*b/c', star('/a/*')],
    ['/x/a**/y', star('/x/a/*')],
    ['/*a', star('/*')],
    ['/users/*/orders', star('/users/:param/orders')],
    ['/*/x', star('/:param/x')],
    ['/a/*/b/*', star('/a/:param/b/*')],
    ['/:id/:id', 'param ":id" appears twice'],
    ['/:id/x/:id/*', 'param ":id" appears twice'],
    ['/:1x', '":1x" is not a valid param name'],
    ['/:', '":" is not a valid param name'],
    ['/x/:a-b', '":a-b" is not a valid param name'],
    ['/a/../b', notNormalized],
    ['/a/./b', notNormalized],
    ['/a//b', notNormalized],
    ['/%61', notNormalized],
    ['/a%3a', notNormalized],
    // Requests are matched with these escapes decoded: written escaped, the route could never match.
    ['/a%3A', notNormalized],
    ['/v1/admin%3Areset', notNormalized],
    ['/%40me/*', notNormalized],
    ['/a/../*', notNormalized],
    // No request path has these segments once normalized: the route could never match.
    ['/:id/../x', notNormalized],
    ['/:id//x', notNormalized],
    ['/users/:id/%7e', notNormalized]
  ]
  for (const [source, want] of table) t.equal(compilePathPattern(source), want, source)
})

t.test('rejected patterns: characters no request path holds, with what to write instead', async t => {
  const table: ReadonlyArray<readonly [string, string]> = [
    ['/a?x=1', 'has a "?": a route matches the path only, the query after it is not matched'],
    ['/a/*?', 'has a "?": a route matches the path only, the query after it is not matched'],
    ['/a#x', 'has a "#" (a fragment): never part of a request path (the gateway refuses one with 400)'],
    ['/a b', 'has a space, which no request path has: write it percent-encoded (%20)'],
    ['/a\tb', 'has a control character, which no request path has: write it percent-encoded (%09)'],
    ['/a\x7f', 'has a control character, which no request path has: write it percent-encoded (%7F)'],
    // What a client sends for /café is /caf%C3%A9, and that is what a route matches.
    ['/café', 'has non-ASCII characters, which clients send percent-encoded as UTF-8: write "/caf%C3%A9"'],
    ['/:id/日本/*', 'has non-ASCII characters, which clients send percent-encoded as UTF-8: write "/:id/%E6%97%A5%E6%9C%AC/*"']
  ]
  for (const [source, want] of table) t.equal(compilePathPattern(source), want, JSON.stringify(source))
  // Printable ASCII a request path may hold stays literal, the encoded form of /café included.
  for (const source of ['/caf%C3%A9', '/a|b', '/a/x:id', "/a'b/{c}/*", '/a@b,c=d+e!$&']) t.type(compilePathPattern(source), 'object', source)
  t.same((compilePathPattern('/caf%C3%A9') as PathPattern).match('/caf%C3%A9'), {})
  t.same((compilePathPattern('/a/x:id') as PathPattern).params, [], '":" inside a segment is literal')
})

t.test('splitTemplate: literal text at even indexes, param names and "*" at odd ones', async t => {
  t.strictSame(splitTemplate('/v2/accounts/:id/*', ['id', '*'], 'match.path'), ['/v2/accounts/', 'id', '/', '*', ''])
  t.strictSame(splitTemplate('/static', [], 'match.path'), ['/static'])
  t.strictSame(splitTemplate(':a-:b_1', ['a', 'b_1'], 'match.path'), ['', 'a', '-', 'b_1', ''])
  t.equal(splitTemplate('/v2/:uid', ['id'], 'match.path'), 'uses ":uid", which match.path does not define')
  t.equal(splitTemplate('/v2/:id/*', ['id'], 'the route'), 'uses "*", which the route does not define')
  t.equal(splitTemplate('/:id/:x', ['id'], 'the route'), 'uses ":x", which the route does not define')
})

t.test('compileRewrite: the upstream path from the params; an empty "*" takes its slash with it', async t => {
  const rewrite = (template: string, available: string[]) => {
    const r = compileRewrite(template, available)
    if (typeof r === 'string') throw new Error(r)
    return r
  }
  const account = rewrite('/v2/accounts/:id/*', ['id', '*'])
  t.equal(account('/users/7/a/b', { id: '7', '*': 'a/b' }), '/v2/accounts/7/a/b')
  t.equal(account('/users/7/a/', { id: '7', '*': 'a/' }), '/v2/accounts/7/a/')
  t.equal(account('/users/7', { id: '7', '*': '' }), '/v2/accounts/7')
  t.equal(rewrite('/*', ['*'])('/', { '*': '' }), '/')
  t.equal(rewrite('/*', ['*'])('/api', { '*': '' }), '/')
  t.equal(rewrite('/*', ['*'])('/x', { '*': 'x' }), '/x')
  t.equal(rewrite('/files-*', ['*'])('/f', { '*': '' }), '/files-')
  t.equal(rewrite('/files/*/raw', ['*'])('/f/a', { '*': 'a' }), '/files/a/raw')
  t.equal(rewrite('/users/:id/profile', ['id'])('/p/ann', { id: 'ann' }), '/users/ann/profile')
  t.equal(rewrite('/fixed', ['id'])('/p/ann/', { id: 'ann' }), '/fixed')
  t.equal(compileRewrite('/v2/:uid', ['id']), 'uses ":uid", which match.path does not define')
  const notNormalized = 'not normalized (no //, . or .. segments, or escapes of unreserved characters)'
  t.equal(compileRewrite('/v2//:id', ['id']), notNormalized)
  t.equal(compileRewrite('/v2/:id/..', ['id']), notNormalized)
  t.equal(compileRewrite('/%7e/:id', ['id']), notNormalized)
  // An empty "*" at the start never leaves a path without its leading slash (the HTTP client refuses one: a 500).
  t.equal(rewrite('/*.json', ['*'])('/api', { '*': '' }), '/.json')
  t.equal(rewrite('/*.json', ['*'])('/api/users', { '*': 'users' }), '/users.json')
  t.equal(rewrite('/*@:ver', ['*', 'ver'])('/v/1', { '*': '', ver: '1' }), '/@1')
  t.equal(compileRewrite('/x/..*', ['*']), notNormalized, 'an empty "*" would leave a dot segment')
  // `/d/*` to `/x/*..` sent `/d/admin/` as `/x/admin/..`: a "*" ending with "/" leaves what follows a segment of its own.
  for (const [template, made] of [['/x/*..', '/x/x/..'], ['/x/*.', '/x/x/.'], ['/x/*./y', '/x/x/./y']] as const) {
    t.equal(compileRewrite(template, ['*']), `"*" followed by "." makes a . or .. segment when the request path ends with "/" (a "*" of "x/" gives ${made}), which the upstream would resolve to another path`, template)
  }
  t.equal(rewrite('/x/*...', ['*'])('/d/admin/', { '*': 'admin/' }), '/x/admin/...', '"..." is no dot segment')
  t.equal(rewrite('/x/*.json', ['*'])('/d/admin/', { '*': 'admin/' }), '/x/admin/.json')
  // Forwarded as written: a custom method (AIP-136) after a param.
  t.equal(rewrite('/v2/things/:id%3AbatchGet', ['id'])('/t/7', { id: '7' }), '/v2/things/7%3AbatchGet')
})

t.test('compileRewrite: a path only, of characters a request path holds (the HTTP client refuses others)', async t => {
  const query = 'has a "?": a rewrite is a path only, and the client\'s query is forwarded after it as sent'
  t.equal(compileRewrite('/x?a=1&b=*', ['*']), query)
  t.equal(compileRewrite('/x/:id?', ['id']), query)
  t.equal(compileRewrite('/x#*', ['*']), 'has a "#" (a fragment): never part of a request path (the gateway refuses one with 400)')
  t.equal(compileRewrite('/x y/*', ['*']), 'has a space, which no request path has: write it percent-encoded (%20)')
  t.equal(compileRewrite('/é/:id', ['id']), 'has non-ASCII characters, which clients send percent-encoded as UTF-8: write "/%C3%A9/:id"')
  t.type(compileRewrite('/x%20y/:id/*', ['id', '*']), 'function')
})

t.test('compileRewrite: a trailing slash is kept, and a substitution makes no "//"', async t => {
  const rewrite = (template: string, available: string[]) => compileRewrite(template, available) as (path: string, params: Record<string, string>) => string
  // `/api/*` to `/v2/*`: `/api/` is `/v2/`, as stripPrefix makes `/api/` into `/`.
  const v2 = rewrite('/v2/*', ['*'])
  t.equal(v2('/api/', { '*': '' }), '/v2/')
  t.equal(v2('/api', { '*': '' }), '/v2')
  t.equal(v2('/', { '*': '' }), '/v2/')
  t.equal(rewrite('/v2/accounts/:id/*', ['id', '*'])('/users/7/', { id: '7', '*': '' }), '/v2/accounts/7/')
  // A "*" inside the template: its trailing slash meets the next one.
  const inner = rewrite('/z/*/:a', ['a', '*'])
  t.equal(inner('/m/1/a/b/', { a: '1', '*': 'a/b/' }), '/z/a/b/1')
  t.equal(inner('/m/1/a/b', { a: '1', '*': 'a/b' }), '/z/a/b/1')
  t.equal(inner('/m/1/', { a: '1', '*': '' }), '/z/1')
  t.equal(rewrite('/files/*/raw', ['*'])('/f/', { '*': '' }), '/files/raw')
  t.equal(rewrite('/files/*/raw', ['*'])('/f/a/', { '*': 'a/' }), '/files/a/raw')
})
