import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { compileTemplate } from './template.ts'

let hits = 0
const up = await startUpstream((_req, res) => { hits++; res.end('upstream') })
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: users, match: { path: /users/:id/orders/:order }, upstream: up, plugins: { redirect: { to: "https://api.example.com:8443/v2/users/:id/orders/:order", status: 301 } } }
  - { name: docs, match: { path: /docs/* }, upstream: up, plugins: { redirect: { to: "/manual/*", status: 308, keepQuery: false } } }
  - { name: tagged, match: { path: /old/:id }, upstream: up, plugins: { redirect: { to: "https://new.example.com/items?legacy=:id" } } }
  - { name: root, match: { path: /root/* }, upstream: up, plugins: { redirect: { to: "/*" } } }
  - { name: v1, match: { path: /v1/* }, upstream: up, plugins: { redirect: { to: "https://new.example.com/v2/*" } } }
  - { name: find, match: { path: /find/* }, upstream: up, plugins: { redirect: { to: "/search?q=*" } } }
  - { name: guide, match: { path: /a }, upstream: up, plugins: { redirect: { to: "https://docs.example.com/guide#install" } } }
  - { name: results, match: { path: /b/* }, upstream: up, plugins: { redirect: { to: "/search?q=*#results" } } }
  - { name: in-fragment, match: { path: /c/:id }, upstream: up, plugins: { redirect: { to: "/items#item-:id?" } } }
  - { name: moved, match: { path: /moved }, upstream: up, plugins: { redirect: { to: "https://elsewhere.example.com/", status: 307 } } }
  - { name: unicode-host, match: { path: /u/:id }, upstream: up, plugins: { redirect: { to: "https://例え.jp/x/:id" } } }
  - { name: cafe, match: { path: /cafe }, upstream: up, plugins: { redirect: { to: "/café/☕😀?s=ü#ß" } } }
  - { name: quoted, match: { path: /q/* }, upstream: up, plugins: { redirect: { to: '/a"b<c>{d}|e^f\\g[h]%zz%41/*#x#y' } } }
  - { name: wiki, match: { path: /wiki/:page }, upstream: up, plugins: { redirect: { to: 'https://n.example/wiki/Special\\:Search/:page\\*?all=\\*' } } }
  - { name: loop, match: { path: /loop/* }, upstream: up, plugins: { redirect: { to: "/loop/*" } } }
  - { name: grow, match: { path: /grow/* }, upstream: up, plugins: { redirect: { to: "/grow/more/*?x=1" } } }
  - { name: self, match: { path: /self/:id }, upstream: up, plugins: { redirect: { to: "/self/:id#top" } } }
  - { name: profile, match: { path: /profile/:id }, upstream: up, plugins: { redirect: { to: "/profile/:id/settings" } } }
  - { name: away, match: { path: /away/* }, upstream: up, plugins: { redirect: { to: "https://other.example/away/*" } } }
`)
t.teardown(() => gw.close())

async function location (path: string, method = 'GET'): Promise<[number, string | undefined]> {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET' })
  await res.body.dump()
  return [res.statusCode, res.headers.location as string | undefined]
}

t.test('templates with the match\'s params, and the query kept or dropped', async t => {
  const cases: Array<[string, number, string]> = [
    ['/users/42/orders/7', 301, 'https://api.example.com:8443/v2/users/42/orders/7'],
    ['/users/a%20b/orders/7?x=1&y=2', 301, 'https://api.example.com:8443/v2/users/a%20b/orders/7?x=1&y=2'],
    ['/docs/guide/intro', 308, '/manual/guide/intro'],
    ['/docs/guide/intro?q=search', 308, '/manual/guide/intro'],
    ['/docs/', 308, '/manual'],
    ['/old/9?page=2', 302, 'https://new.example.com/items?legacy=9&page=2'],
    ['/moved', 307, 'https://elsewhere.example.com/'],
    ['/root/a', 302, '/a'],
    ['/root/', 302, '/'],
    // An empty "*" takes only a slash before it.
    ['/v1', 302, 'https://new.example.com/v2'],
    ['/v1/a/b', 302, 'https://new.example.com/v2/a/b'],
    ['/find/', 302, '/search?q='],
    ['/find/tea?page=2', 302, '/search?q=tea&page=2'],
    // The query goes before the template's #fragment, which may hold params (and a "?" of its own).
    ['/a?lang=fr', 302, 'https://docs.example.com/guide?lang=fr#install'],
    ['/a', 302, 'https://docs.example.com/guide#install'],
    ['/b/tea?page=2', 302, '/search?q=tea&page=2#results'],
    ['/c/7?x=1', 302, '/items?x=1#item-7?']
  ]
  for (const [path, status, expected] of cases) t.same(await location(path), [status, expected], path)
  t.same(await location('/moved', 'POST'), [307, 'https://elsewhere.example.com/'], 'any method')
  t.equal(hits, 0, 'the upstream was never called')
})

t.test('a param or "*" in the template\'s query or fragment has its &, = and + encoded: it stays one value; in the path they stay', async t => {
  const cases: Array<[string, string]> = [
    ['/find/tea&admin=1', '/search?q=tea%26admin%3D1'],
    ['/find/a+b=c?page=2', '/search?q=a%2Bb%3Dc&page=2'],
    ['/old/9&admin=1', 'https://new.example.com/items?legacy=9%26admin%3D1'],
    ['/b/tea&x=1', '/search?q=tea%26x%3D1#results'],
    ['/c/7&x=1', '/items#item-7%26x%3D1?'],
    // Still percent-encoded as matched: a %26 the client sent stays one.
    ['/find/tea%26x', '/search?q=tea%26x'],
    ['/users/a&b=c+d/orders/7', 'https://api.example.com:8443/v2/users/a&b=c+d/orders/7'],
    ['/v1/a&b=c', 'https://new.example.com/v2/a&b=c']
  ]
  for (const [path, expected] of cases) t.equal((await location(path))[1], expected, path)
  const compiled = compileTemplate('/p/:a?x=:b&y=*', ['a', 'b', '*'])
  t.equal(typeof compiled === 'string' ? compiled : compiled({ a: 'a&=+', b: 'b&=+', '*': 'c&=+' }, ''), '/p/a&=+?x=b%26%3D%2B&y=c%26%3D%2B')
})

t.test('a path-relative to that leads back to its own route with the same params is warned of at load: the client would be redirected in a loop', async t => {
  const warned = gw.logs.filter(l => l.level === 40 && String(l.msg).startsWith('redirect:')).map(l => [l.route, l.to])
  t.same(warned, [['loop', '/loop/*'], ['self', '/self/:id#top']],
    'not /grow/* to /grow/more/* (a more specific route may take it), /root/* to /*, /profile/:id to /profile/:id/settings, nor one to another host')
  t.equal(gw.logs.find(l => l.route === 'loop' && l.level === 40)?.msg,
    'redirect: to "/loop/*" leads back to this route ("/loop/*") with the same params: clients are redirected to the same place again and again, ' +
    'unless the route\'s methods or headers leave the redirected request out')
  t.same(await location('/loop/x'), [302, '/loop/x'], 'still loaded')
})

t.test('"\\:" and "\\*" are a literal ":" and "*"', async t => {
  t.same(await location('/wiki/Tea?x=1'), [302, 'https://n.example/wiki/Special:Search/Tea*?all=*&x=1'])
})

t.test('an IP literal host\'s colons are literal, params after it are not', async t => {
  const cases: Array<[string, string]> = [
    ['https://[2001:db8::a]:8443/v2/:id', 'https://[2001:db8::a]:8443/v2/7'],
    ['http://[::1]/:id', 'http://[::1]/7'],
    ['//user@[fe80::ab:cd]/x/:id', '//user@[fe80::ab:cd]/x/7']
  ]
  for (const [to, expected] of cases) {
    const compiled = compileTemplate(to, ['id'])
    t.equal(typeof compiled === 'string' ? compiled : compiled({ id: '7' }, ''), expected, to)
  }
  t.match(compileTemplate('/p/[::ab]/x', ['id']), /uses ":ab"/, 'brackets in a path are not a host')
})

t.test('an empty "*" right after the host leaves the host\'s "/"', async t => {
  const compiled = compileTemplate('https://example.com/*', ['*'])
  t.equal(typeof compiled === 'string' ? compiled : compiled({ '*': '' }, 'x=1'), 'https://example.com/?x=1')
})

t.test('what a URI may not hold, in the client\'s query or path, is percent-encoded in the Location', async t => {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  let answer = ''
  socket.on('data', (c: Buffer) => { answer += c.toString() })
  socket.write('GET /find/a"b<c>{d}?x=<script>"\'&y=[1]%zz&z=%41 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await once(socket, 'close')
  t.match(answer, /^HTTP\/1.1 302 /)
  t.equal(/\r\nlocation: (.*)\r\n/i.exec(answer)?.[1], '/search?q=a%22b%3Cc%3E%7Bd%7D&x=%3Cscript%3E%22\'&y=%5B1%5D%25zz&z=%41')
})

t.test('a param or a "*" the route does not define is a config error', async t => {
  for (const [to, named] of [['/b/:ident', ':ident'], ['/b/*', '*']] as const) {
    await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /a/:id }, upstream: up, plugins: { redirect: { to: "${to}" } } }
`), { message: new RegExp(`test\\.yaml:7:\\d+ routes\\[0\\]\\.plugins\\.redirect\\.to: uses "${named.replace('*', '\\*')}", which the route's match\\.path does not define \\(a literal ":" or "\\*" is written "\\\\:" or "\\\\\\*"\\)$`, 'm') }, to)
  }
})

t.test('what a URI may not hold in the template is percent-encoded (UTF-8) at load, a non-ASCII host as punycode', async t => {
  const cases: Array<[string, string]> = [
    ['/u/7?k=v', 'https://xn--r8jz45g.jp/x/7?k=v'],
    ['/cafe?x=1', '/caf%C3%A9/%E2%98%95%F0%9F%98%80?s=%C3%BC&x=1#%C3%9F'],
    // A `%` starting an escape is kept; a second "#" is no fragment of its own.
    ['/q/z', '/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%5Cg%5Bh%5D%25zz%41/z#x%23y']
  ]
  for (const [path, expected] of cases) t.same(await location(path), [302, expected], path)
})

/** The message a config with this route (and top-level plugins) fails to load with. */
async function loadError (route: string, plugins = ''): Promise<string> {
  const loading = startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
${plugins}
routes:
  - ${route}
`)
  const gateway = await loading.catch((err: Error) => err.message)
  if (typeof gateway === 'string') return gateway
  await gateway.close()
  return 'loaded'
}

t.test('a param or "*" before the path, which would let the request choose the host, is a config error', async t => {
  const cases: Array<[string, string, string]> = [
    ['/t/*', 'https://*.tenants.example.com/home', '*'],
    ['/a/*', 'https://example.com*/', '*'],
    ['/a/:id', 'https://:id.example.com/', ':id'],
    ['/a/:id', 'http://example.com::id/x', ':id'],
    ['/a/:id', 'https://user:id@example.com/', ':id'],
    ['/a/:id', '//:id/x', ':id'],
    ['/a/:id', 'https://[::1]:id/x', ':id']
  ]
  for (const [path, to, named] of cases) {
    t.match(await loadError(`{ name: r, match: { path: ${path} }, upstream: up, plugins: { redirect: { to: '${to}' } } }`),
      `routes[0].plugins.redirect.to: has "${named}" before its path: a request would choose the host it is redirected to, so params and "*" may only come after the host (a literal ":" or "*" is written "\\:" or "\\*")`, to)
  }
  t.match(await loadError('{ name: r, match: { path: /a/* }, upstream: up }', 'plugins: { redirect: { to: "https://*.example.com/" } }'),
    /\(1 problem\):\n\S+ plugins\.redirect\.to: has "\*" before its path/, 'a top-level one, once')
  const escaped = compileTemplate('https://user\\:pw@example.com/:id', ['id'])
  t.equal(typeof escaped === 'string' ? escaped : escaped({ id: '7' }, ''), 'https://user:pw@example.com/7', 'escaped, they are literal text')
})

t.test('a host or port no Location can hold is a config error', async t => {
  const cases: Array<[string, string]> = [
    ['https://a"b.example/x', 'has "a"b.example" as its host, which is no valid host name'],
    ['https://例え"x.jp/x', 'has "例え"x.jp" as its host, which is no valid host name'],
    ['https://例え<x.jp/x', 'has "例え<x.jp" as its host, which is no valid host name'],
    ['https://[::g]/x', 'has "[::g]" as its host, which is no valid host name'],
    ['https://example.com:8a/x', 'has "8a" as its port, which is not a number'],
    ['///x', 'has no host after "//"'],
    ['https://good.example\\@evil.com/x', 'has "\\" before its path: browsers read it as "/" and end the host there'],
    ['https://good.example\\.evil.com/x', 'has "\\" before its path']
  ]
  for (const [to, problem] of cases) {
    t.match(await loadError(`{ name: r, match: { path: /a }, upstream: up, plugins: { redirect: { to: '${to}' } } }`), `routes[0].plugins.redirect.to: ${problem}`, to)
  }
})
