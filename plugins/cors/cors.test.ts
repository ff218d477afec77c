import t, { type Test } from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'

const hits: string[] = []
const up = await startUpstream((req, res) => {
  hits.push(`${req.method as string} ${req.url as string}`)
  // /leaky*: an upstream that says more about CORS than the gateway's config allows.
  const more = (req.url as string).startsWith('/leaky')
    ? {
        'access-control-allow-credentials': 'true',
        'access-control-expose-headers': 'X-Secret',
        'access-control-allow-methods': 'GET, DELETE',
        'access-control-allow-headers': 'X-Anything',
        'access-control-max-age': '86400',
        'access-control-allow-private-network': 'true'
      }
    : {}
  res.writeHead(200, { 'content-type': 'text/plain', vary: 'Accept-Language', 'access-control-allow-origin': '*', ...more }).end('ok')
})
t.teardown(() => up.close())

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
  down: { targets: [ { url: "http://127.0.0.1:1" } ], retries: false }
routes:
  - name: exact
    match: { path: /exact }
    upstream: up
    plugins:
      cors: { origins: [https://app.example.com, "https://*.example.net", "*.example.org", "/^https:\\\\/\\\\/pr-\\\\d+\\\\.preview\\\\.dev$/"], exposeHeaders: [X-Total, X-Page] }
  - { name: any, match: { path: /any }, upstream: up, plugins: { cors: { origins: ["*"], headers: [Content-Type, Authorization], maxAge: 60 } } }
  - { name: creds, match: { path: /creds }, upstream: up, plugins: { cors: { origins: ["https://x.test", "https://*.example.net"], credentials: true, methods: [GET, POST] } } }
  - { name: down, match: { path: /down }, upstream: down, plugins: { cors: { origins: [https://app.example.com] } } }
  - { name: leaky, match: { path: /leaky }, upstream: up, plugins: { cors: { origins: ["HTTPS://Config.Example.com/", "/^https:\\\\/\\\\/[a-z]+\\\\.flagged\\\\.dev$/i"] } } }
  - { name: leaky-wild, match: { path: /leaky/wild }, upstream: up, plugins: { cors: { origins: ["https://*.example.net"] } } }
  - { name: leaky-creds, match: { path: /leaky/creds }, upstream: up, plugins: { cors: { origins: [https://app.example.com], credentials: true, exposeHeaders: [X-Total] } } }
  - { name: sandboxed, match: { path: /sandboxed }, upstream: up, plugins: { cors: { origins: ["null"], credentials: true } } }
  - { name: null-regex, match: { path: /null-regex }, upstream: up, plugins: { cors: { origins: ["/^(https:\\\\/\\\\/x\\\\.test|null)$/"], credentials: true } } }
  - { name: fenced, match: { path: /fenced }, upstream: up, plugins: { cors: { origins: [https://app.example.com] }, ip-filter: { deny: [127.0.0.0/8] } } }
  - { name: any-https, match: { path: /any-https }, upstream: up, plugins: { cors: { origins: ["https://*", "http://*.example.org"] } } }
`)
t.teardown(() => gw.close())

async function call (path: string, method: string, headers: Record<string, string>) {
  const res = await request(`${gw.url}${path}`, { method: method as 'GET', headers })
  await res.body.dump()
  return res
}

const preflight = (path: string, origin: string, extra: Record<string, string> = {}) =>
  call(path, 'OPTIONS', { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-custom, content-type', ...extra })

t.test('a preflight from an allowed origin is answered at the gateway', async t => {
  const before = hits.length
  const res = await preflight('/exact', 'https://app.example.com')
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(res.headers['access-control-allow-methods'], 'GET, HEAD, PUT, PATCH, POST, DELETE')
  t.equal(res.headers['access-control-allow-headers'], 'x-custom, content-type', 'the headers asked for, when none are configured')
  t.equal(res.headers['access-control-max-age'], '600')
  t.equal(res.headers['access-control-allow-credentials'], undefined)
  t.equal(res.headers.vary, 'origin, access-control-request-method, access-control-request-headers')
  t.equal(hits.length, before, 'never forwarded')
})

t.test('a preflight from another origin gets no CORS headers, and is not forwarded either', async t => {
  const before = hits.length
  const res = await preflight('/exact', 'https://evil.example')
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], undefined)
  t.equal(res.headers['access-control-allow-methods'], undefined)
  t.equal(res.headers.vary, 'origin, access-control-request-method, access-control-request-headers')
  t.equal(hits.length, before)
})

t.test('configured headers, methods and max age', async t => {
  const any = await preflight('/any', 'https://x.test')
  t.equal(any.headers['access-control-allow-origin'], '*')
  t.equal(any.headers['access-control-allow-headers'], 'Content-Type, Authorization')
  t.equal(any.headers['access-control-max-age'], '60')
  const creds = await preflight('/creds', 'https://x.test')
  t.equal(creds.headers['access-control-allow-origin'], 'https://x.test', 'with credentials the origin is echoed')
  t.equal(creds.headers['access-control-allow-credentials'], 'true')
  t.equal(creds.headers['access-control-allow-methods'], 'GET, POST')
})

t.test('actual requests: the upstream\'s answer with CORS headers and Vary: Origin', async t => {
  const res = await call('/exact', 'GET', { origin: 'https://app.example.com' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com', 'the upstream\'s * replaced')
  t.equal(res.headers['access-control-expose-headers'], 'X-Total, X-Page')
  t.equal(res.headers.vary, 'Accept-Language, origin')
  const any = await call('/any', 'GET', { origin: 'https://x.test' })
  t.equal(any.headers['access-control-allow-origin'], '*')
  t.equal(any.headers['access-control-allow-credentials'], undefined)
  t.equal(any.headers.vary, 'Accept-Language, origin', 'Vary: Origin even with *')
  const creds = await call('/creds', 'POST', { origin: 'https://x.test' })
  t.equal(creds.headers['access-control-allow-origin'], 'https://x.test')
  t.equal(creds.headers['access-control-allow-credentials'], 'true')
})

t.test('an origin not allowed, or none: no CORS headers, not an error', async t => {
  const other = await call('/exact', 'GET', { origin: 'https://evil.example' })
  t.equal(other.statusCode, 200)
  t.equal(other.headers['access-control-allow-origin'], undefined, 'even the upstream\'s own is removed')
  t.equal(other.headers.vary, 'Accept-Language, origin')
  const none = await call('/exact', 'GET', {})
  t.equal(none.statusCode, 200)
  t.equal(none.headers.vary, 'Accept-Language, origin')
})

/** Each origin of `cases` on `path`: echoed in Access-Control-Allow-Origin when allowed, else no such header. */
async function expectOrigins (t: Test, path: string, cases: Array<[string, boolean]>): Promise<void> {
  for (const [origin, allowed] of cases) {
    const res = await call(path, 'GET', { origin })
    t.equal(res.headers['access-control-allow-origin'], allowed ? origin : undefined, origin)
  }
}

t.test('wildcards and regular expressions', async t => {
  const cases: Array<[string, boolean]> = [
    ['https://a.example.net', true], ['https://a.b.example.net', true], ['http://a.example.net', false], ['https://example.net', false],
    ['https://evilexample.net', false], ['https://a.example.net.evil.com', false],
    ['http://shop.example.org', true], ['https://shop.example.org', true], ['https://shop.example.org:8443', false],
    ['https://pr-42.preview.dev', true], ['https://pr-x.preview.dev', false], ['https://APP.example.com', false]
  ]
  await expectOrigins(t, '/exact', cases)
})

t.test('https://* allows every https origin: a port and an IPv6 address too; a wildcard with labels, no other port', async t => {
  await expectOrigins(t, '/any-https', [
    ['https://a.example', true], ['https://a.example:8443', true], ['https://10.0.0.1:8443', true], ['https://[::1]', true],
    ['https://[2001:db8::1]:8443', true], ['http://a.example', false], ['http://[::1]:8080', false], ['https://a.example:8443:1', false],
    ['http://shop.example.org', true], ['http://shop.example.org:8080', false]
  ])
})

t.test('an OPTIONS request that is not a preflight goes upstream', async t => {
  const before = hits.length
  const res = await call('/exact', 'OPTIONS', { origin: 'https://app.example.com' })
  t.equal(res.statusCode, 200)
  t.equal(hits.length, before + 1)
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com')
})

t.test('the gateway\'s own errors and other plugins\' refusals carry the headers', async t => {
  const down = await call('/down', 'GET', { origin: 'https://app.example.com' })
  t.equal(down.statusCode, 502)
  t.equal(down.headers['access-control-allow-origin'], 'https://app.example.com')
  const fenced = await call('/fenced', 'GET', { origin: 'https://app.example.com' })
  t.equal(fenced.statusCode, 403)
  t.equal(fenced.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(fenced.headers.vary, 'origin')
})

t.test('a preflight is answered before ip-filter runs: a denied address gets its 204', async t => {
  const res = await preflight('/fenced', 'https://app.example.com')
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com')
})

t.test('a regular expression that does not compile is a config error', async t => {
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: { origins: ["/(unclosed/"] } } }
`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.cors\.origins\[0\]: Invalid regular expression/ })
})

t.test('an entry starting with a slash that is not /regex/ with flags among i, m, s, u is a config error, not an exact origin', async t => {
  for (const entry of ['/^https:\\\\/\\\\/app\\\\.example\\\\.com$/g', '/app.example.com']) {
    await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: { origins: [https://a.example.com, "${entry}"] } } }
`), { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.cors\.origins\[1\]: a regular expression is written \/pattern\/flags, its flags among i, m, s and u/ }, entry)
  }
})

t.test('a request other than OPTIONS, or an OPTIONS without Origin or without Access-Control-Request-Method, is not a preflight: it goes upstream', async t => {
  const before = hits.length
  const noOrigin = await call('/exact', 'OPTIONS', { 'access-control-request-method': 'PUT' })
  t.equal(noOrigin.statusCode, 200)
  t.equal(noOrigin.headers['access-control-allow-methods'], undefined)
  t.equal(hits.length, before + 1)
  const noMethod = await call('/any', 'OPTIONS', { origin: 'https://x.test', 'access-control-request-headers': 'x-custom' })
  t.equal(noMethod.statusCode, 200)
  t.equal(noMethod.headers['access-control-allow-methods'], undefined)
  t.equal(hits.length, before + 2)
  const get = await call('/exact', 'GET', { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' })
  t.equal(get.statusCode, 200)
  t.equal(get.headers['access-control-allow-methods'], undefined)
  t.equal(hits.length, before + 3)
})

t.test('a preflight that asks for no headers gets no Access-Control-Allow-Headers', async t => {
  const res = await preflight('/exact', 'https://app.example.com', { 'access-control-request-headers': '' })
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], 'https://app.example.com')
  t.notOk('access-control-allow-headers' in res.headers)
})

t.test('without exposeHeaders, no Access-Control-Expose-Headers; a refused origin gets none of the upstream\'s CORS headers', async t => {
  const any = await call('/any', 'GET', { origin: 'https://x.test' })
  t.notOk('access-control-expose-headers' in any.headers)
  const refused = await call('/leaky', 'GET', { origin: 'https://evil.example' })
  t.equal(refused.statusCode, 200)
  for (const h of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', 'access-control-allow-private-network']) t.notOk(h in refused.headers, h)
})

t.test('exact origins are configured in any case and with a trailing slash; a regular expression keeps its flags', async t => {
  const cases: Array<[string, boolean]> = [
    ['https://config.example.com', true], ['https://config.example.com/', false], ['https://config.example.co', false],
    ['https://preview.flagged.dev', true], ['https://Preview.FLAGGED.dev', true], ['https://pr-1.flagged.dev', false]
  ]
  await expectOrigins(t, '/leaky', cases)
})

t.test('a wildcard is anchored at both ends', async t => {
  for (const origin of ['xhttps://a.example.net', 'https://a.example.net/', 'evil-http://shop.example.org', 'https://shop.example.org.evil']) {
    const res = await call('/exact', 'GET', { origin })
    t.equal(res.headers['access-control-allow-origin'], undefined, origin)
  }
})

const UPSTREAM_CORS = ['access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age', 'access-control-allow-private-network']

t.test('an allowed origin gets the CORS headers of the config alone, none of the upstream\'s', async t => {
  const plain = await call('/leaky/wild', 'GET', { origin: 'https://a.example.net' })
  t.equal(plain.statusCode, 200)
  t.equal(plain.headers['access-control-allow-origin'], 'https://a.example.net', 'the upstream\'s * replaced')
  for (const h of ['access-control-allow-credentials', 'access-control-expose-headers', ...UPSTREAM_CORS]) t.notOk(h in plain.headers, h)
  const creds = await call('/leaky/creds', 'GET', { origin: 'https://app.example.com' })
  t.equal(creds.headers['access-control-allow-origin'], 'https://app.example.com')
  t.equal(creds.headers['access-control-allow-credentials'], 'true')
  t.equal(creds.headers['access-control-expose-headers'], 'X-Total', 'the configured list, not the upstream\'s')
  for (const h of UPSTREAM_CORS) t.notOk(h in creds.headers, h)
  const none = await call('/leaky/wild', 'GET', {})
  for (const h of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers', ...UPSTREAM_CORS]) t.notOk(h in none.headers, `no Origin: ${h}`)
})

t.test('with credentials, Origin: null is allowed only when listed: never by a pattern', async t => {
  for (const path of ['/creds', '/null-regex']) {
    const res = await call(path, 'GET', { origin: 'null' })
    t.equal(res.statusCode, 200)
    t.notOk('access-control-allow-origin' in res.headers, `${path}: not echoed`)
    t.notOk('access-control-allow-credentials' in res.headers, path)
    const pre = await preflight(path, 'null')
    t.notOk('access-control-allow-origin' in pre.headers, `${path}: preflight`)
    const other = await call(path, 'GET', { origin: 'https://x.test' })
    t.equal(other.headers['access-control-allow-origin'], 'https://x.test', `${path}: other origins still echoed`)
  }
  const listed = await call('/sandboxed', 'GET', { origin: 'null' })
  t.equal(listed.headers['access-control-allow-origin'], 'null')
  t.equal(listed.headers['access-control-allow-credentials'], 'true')
  const any = await call('/any', 'GET', { origin: 'null' })
  t.equal(any.headers['access-control-allow-origin'], '*', 'without credentials, * stays *')
})

/** The problems parseConfig finds in a route with this cors config, as `key: message` (file positions left out). */
async function corsProblems (cors: Record<string, unknown>): Promise<string[]> {
  const yaml = `server: { listen: { host: 127.0.0.1, port: 0 } }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: ${JSON.stringify(cors)} } }
`
  try {
    await parseConfig(yaml, 'gw.yaml', {})
    return []
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return err.issues.map(issue => formatIssue(issue).replace(/^gw\.yaml:\d+:\d+ routes\[0\]\.plugins\.cors\./, ''))
  }
}

t.test('with credentials, an entry that lets in any site is a config error at its key', async t => {
  const origins = ['*', 'https://*', '*.com', 'https://*.dev', '/^.*$/', '/^https:\\/\\/.+$/']
  const problems = await corsProblems({ origins, credentials: true, methods: ['*'], headers: ['*'], exposeHeaders: ['X-Total', '*'] })
  t.match(problems, [
    /^origins\[0\]: `\*` with credentials: true, any site could read your users' responses: list the origins$/,
    /^origins\[1\]: a wildcard for the whole host with credentials: true, any site could read/,
    /^origins\[2\]: \*\.com lets in every site of a top-level domain: with credentials: true, any site could read/,
    /^origins\[3\]: https:\/\/\*\.dev lets in every site of a top-level domain/,
    /^origins\[4\]: it lets in any site \(https:\/\/example\.invalid matches\): with credentials: true/,
    /^origins\[5\]: it lets in any site \(https:\/\/example\.invalid matches\)/,
    /^methods\[0\]: with credentials: true, browsers take `\*` literally, as a name: list the names$/,
    /^headers\[0\]: with credentials: true, browsers take `\*` literally/,
    /^exposeHeaders\[1\]: with credentials: true, browsers take `\*` literally/
  ])
  t.equal(problems.length, 9)
  t.same(await corsProblems({ origins, methods: ['*'], headers: ['*'], exposeHeaders: ['*'] }), [], 'without credentials, they load')
  t.same(await corsProblems({ origins: ['null', '*.example.org', 'https://*.a.dev', '/^https:\\/\\/pr-\\d+\\.preview\\.dev$/'], credentials: true }), [])
})

t.test('a regular expression must be anchored at both ends, whether credentials are on or not', async t => {
  const unanchored = ['/pr-\\d+\\.preview\\.dev/', '/^https:\\/\\/pr-\\d+\\.preview\\.dev/', '/https:\\/\\/pr-\\d+\\.preview\\.dev$/',
    '/^https:\\/\\/a\\.dev|https:\\/\\/b\\.dev$/', '/^https:\\/\\/a\\.dev\\$/', '/^https:\\/\\/a\\.dev[$]/']
  for (const credentials of [false, true]) {
    const problems = await corsProblems({ origins: unanchored, credentials })
    t.equal(problems.length, unanchored.length, `credentials: ${String(credentials)}`)
    problems.forEach((p, i) => t.match(p, new RegExp(`^origins\\[${i}\\]: a regular expression must be anchored, /\\^\\.\\.\\.\\$/, alternatives grouped inside`), unanchored[i] as string))
  }
  t.same(await corsProblems({ origins: ['/^(?:https:\\/\\/a\\.dev|https:\\/\\/b\\.dev)$/', '/^https:\\/\\/[a-z|$]+\\.dev$/i', '/^https:\\/\\/a\\.dev\\/?$/'] }), [])
})

t.test('an origin no browser sends is a config error, saying what to write', async t => {
  const problems = await corsProblems({
    origins: ['app.example.com', 'https://app.example.com/path', 'https://app.example.com:443', 'http://app.example.com:80', 'https://a b.com',
      'https://bücher.example', '*.bücher.example', 'https://*example.com', 'https://app.*.example.com', 'https://*.example.net:443', 'https://user@app.example.com']
  })
  t.same(problems, [
    'origins[0]: an origin has a scheme, so none equals this: write https://app.example.com (only a wildcard, *.example.com, may leave it out to allow http and https)',
    'origins[1]: browsers send this origin as https://app.example.com (no path, no default port, the host in punycode): write that',
    'origins[2]: browsers send this origin as https://app.example.com (no path, no default port, the host in punycode): write that',
    'origins[3]: browsers send this origin as http://app.example.com (no path, no default port, the host in punycode): write that',
    'origins[4]: not an origin: write scheme://host[:port], e.g. https://app.example.com',
    'origins[5]: browsers send this origin as https://xn--bcher-kva.example (no path, no default port, the host in punycode): write that',
    'origins[6]: browsers send such origins as *.xn--bcher-kva.example (no path, no default port, the host in punycode): write that',
    'origins[7]: a wildcard is written *.example.com or https://*.example.com: one `*`, standing for the first labels of the host',
    'origins[8]: a wildcard is written *.example.com or https://*.example.com: one `*`, standing for the first labels of the host',
    'origins[9]: browsers send such origins as https://*.example.net (no path, no default port, the host in punycode): write that',
    'origins[10]: browsers send this origin as https://app.example.com (no path, no default port, the host in punycode): write that'
  ])
  t.same(await corsProblems({
    origins: ['HTTPS://Config.Example.com/', 'http://localhost:3000', 'http://[::1]:8080', 'https://xn--bcher-kva.example', 'chrome-extension://abcdefgh', '*.example.org:8443', 'https://*', 'null']
  }), [], 'origins as browsers send them, in any case, with a trailing slash, and wildcards as documented')
})

t.test('the upstream\'s Access-Control-Allow-Private-Network never passes', async t => {
  const allowed = await call('/leaky/creds', 'GET', { origin: 'https://app.example.com' })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://app.example.com')
  t.notOk('access-control-allow-private-network' in allowed.headers, 'allowed origin')
  const pre = await preflight('/leaky/creds', 'https://app.example.com', { 'access-control-request-private-network': 'true' })
  t.equal(pre.statusCode, 204)
  t.notOk('access-control-allow-private-network' in pre.headers, 'a PNA preflight is not answered with it')
})

t.test('a cors route whose methods lack OPTIONS is warned of at load; its simple requests still get CORS headers', async t => {
  const warned = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: get-only, match: { path: /get-only, methods: [GET] }, upstream: up, plugins: { cors: { origins: [https://app.example.com] } } }
  - { name: with-options, match: { path: /with-options, methods: [GET, options] }, upstream: up, plugins: { cors: { origins: [https://app.example.com] } } }
  - { name: every-method, match: { path: /every-method }, upstream: up, plugins: { cors: { origins: [https://app.example.com] } } }
  - { name: no-cors, match: { path: /no-cors, methods: [GET] }, upstream: up }
`)
  t.teardown(() => warned.close())
  t.same(warned.logs.filter(l => String(l.msg).startsWith('cors:')).map(l => [l.level, l.route, l.plugin, l.msg]),
    [[40, 'get-only', 'cors', 'cors: this route\'s methods lack OPTIONS: browsers\' preflights get 405 method_not_allowed, without CORS headers, unless another route answers them']],
    'only the cors route without OPTIONS (methods are matched in any case; none: every method)')
  const simple = await request(`${warned.url}/get-only`, { headers: { origin: 'https://app.example.com' } })
  await simple.body.dump()
  t.equal(simple.headers['access-control-allow-origin'], 'https://app.example.com', 'a GET-only route is valid for simple requests')
  t.equal(gw.logs.filter(l => String(l.msg).startsWith('cors: this route')).length, 0, 'no warning for routes without methods')
})

// Browsers compare Access-Control-Allow-Methods case-sensitively, with the request's method upper-case.
t.test('methods are sent upper-case, as routes match them in any case', async t => {
  const lower = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r, methods: [get, put, options] }, upstream: up, plugins: { cors: { origins: [https://app.example.com], methods: [get, put, Patch, GET] } } }
`)
  t.teardown(() => lower.close())
  const res = await request(`${lower.url}/r`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' } })
  await res.body.dump()
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-methods'], 'GET, PUT, PATCH', 'upper-case, each once')
})

t.test('an unknown method is a config error at its key, in any case; `*` is none', async t => {
  await t.rejects(startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      cors: { origins: [https://a.example.com], methods: [get, PSOT] }
`), { message: /test\.yaml:11:64 routes\[0\]\.plugins\.cors\.methods\[1\]: unknown HTTP method "PSOT" \(the standard ones: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\)/ })
  t.same(await corsProblems({ origins: ['https://a.example.com'], methods: ['Fetch', 'propfind', 'post', 'Options'] }), [
    'methods[0]: unknown HTTP method "Fetch" (the standard ones: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)'
  ], 'the methods Node parses, in any case, load')
  t.same(await corsProblems({ origins: ['https://a.example.com'], methods: ['*'] }), [])
})

t.test('with credentials, a regular expression that lets in sites anyone can register, or with an unescaped dot, is a config error; without, the dot is warned of', async t => {
  const broad = ['/^https:\\/\\/.*\\.com$/', '/^https:\\/\\/[a-z0-9-]+\\.com$/', '/^https?:\\/\\/\\w+\\.io$/', '/^http:\\/\\/[a-z]{2,3}\\.net$/',
    '/^https:\\/\\/[^.]+\\.co\\.uk$/', '/^https:\\/\\/\\d+\\.org$/']
  const dotted = ['/^https:\\/\\/app.example.com$/', '/^https:\\/\\/pr-\\d+.preview\\.dev$/', '/^https:\\/\\/(?:www.)?example\\.com$/']
  const problems = await corsProblems({ origins: [...broad, ...dotted], credentials: true })
  t.match(problems, [
    /^origins\[0\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.com matches\): with credentials: true, any site could read/,
    /^origins\[1\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.com matches\)/,
    /^origins\[2\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.io matches\)/,
    /^origins\[3\]: it lets in sites anyone can register \(http:\/\/zzq\.net matches\)/,
    /^origins\[4\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.co\.uk matches\)/,
    /^origins\[5\]: it lets in sites anyone can register \(https:\/\/909\.org matches\)/
  ])
  t.same(problems.slice(broad.length), [
    'origins[6]: an unescaped `.` matches any character: app.example lets in appxexample too, which may be anyone\'s site; did you mean app\\.example?',
    'origins[7]: an unescaped `.` matches any character: .preview lets in xpreview too, which may be anyone\'s site; did you mean \\.preview?',
    'origins[8]: an unescaped `.` matches any character: www. lets in wwwx too, which may be anyone\'s site; did you mean www\\.?'
  ])
  t.equal(problems.length, broad.length + dotted.length)
  t.same(await corsProblems({ origins: [...broad, ...dotted] }), [], 'without credentials, they load')
  t.same(await corsProblems({
    origins: ['/^https:\\/\\/[a-z]+\\.example\\.com$/', '/^https:\\/\\/(?:a|b)\\.example\\.co\\.uk$/', '/^https:\\/\\/.+\\.a\\.dev$/', '/^https:\\/\\/x[.]example\\.com$/'],
    credentials: true
  }), [], 'sites under the operator\'s domains, a dot in a class')

  const warned = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: dotted, match: { path: /* }, upstream: up, plugins: { cors: { origins: [https://a.example, ${JSON.stringify(dotted[0])}] } } }
`)
  t.teardown(() => warned.close())
  t.same(warned.logs.filter(l => String(l.msg).startsWith('cors: origins')).map(l => [l.level, l.route, l.msg]), [[40, 'dotted',
    'cors: origins[1] /^https:\\/\\/app.example.com$/: an unescaped `.` matches any character: app.example lets in appxexample too, which may be anyone\'s site; did you mean app\\.example?']])
  const res = await request(`${warned.url}/`, { headers: { origin: 'https://appxexample.com' } })
  await res.body.dump()
  t.equal(res.headers['access-control-allow-origin'], 'https://appxexample.com', 'what it warns of')
})

t.test('with credentials, a regular expression loose around the names it spells out, or letting in names under common suffixes and shared hosting, is a config error; without, the looseness is warned of', async t => {
  const loose = ['/^https:\\/\\/.*example\\.com$/', '/^https:\\/\\/app\\.example\\.com.*$/', '/^https:\\/\\/.{1,}example\\.com$/', '/^https:\\/\\/.example\\.com$/',
    '/^https:\\/\\/\\w*example\\.com$/', '/^https:\\/\\/[a-z]+-example\\.com$/', '/^https:\\/\\/app\\.example\\.com\\S*$/', '/^https:\\/\\/app\\.example\\.[a-z]+$/']
  const registrable = ['/^https:\\/\\/[a-z0-9-]+\\.co$/', '/^https:\\/\\/[a-z0-9]+\\.ai$/', '/^https:\\/\\/[\\w-]+\\.herokuapp\\.com$/', '/^https:\\/\\/[a-z0-9]+\\.github\\.io$/',
    '/^https:\\/\\/[a-z0-9-]+\\.ngrok-free\\.app$/']
  const wildcards = ['https://*.herokuapp.com', '*.github.io', '*.co.uk']
  const problems = await corsProblems({ origins: [...loose, ...registrable, ...wildcards], credentials: true })
  const subdomain = ' which may be anyone\'s site; write the labels meant (any subdomain: ([a-z0-9-]+\\.)*), or list the origins'
  t.same(problems.slice(0, loose.length), [
    `origins[0]: an unescaped \`.*\` matches any characters, dots included: .*example lets in evilexample too,${subdomain}`,
    `origins[1]: an unescaped \`.*\` matches any characters, dots included: com.* lets in com.evil.net too,${subdomain}`,
    `origins[2]: an unescaped \`.{1,}\` matches any characters, dots included: .{1,}example lets in evilexample too,${subdomain}`,
    'origins[3]: an unescaped `.` matches any character: .example lets in xexample too, which may be anyone\'s site; did you mean \\.example?',
    `origins[4]: it lets in more than the names it spells out (https://zzportcullisprobeexample.com matches),${subdomain}`,
    `origins[5]: it lets in more than the names it spells out (https://zzportcullisprobe-example.com matches),${subdomain}`,
    `origins[6]: it lets in more than the names it spells out (https://app.example.com.zzq matches),${subdomain}`,
    `origins[7]: it lets in more than the names it spells out (https://app.example.zzq matches),${subdomain}`
  ])
  t.match(problems.slice(loose.length), [
    /^origins\[8\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.co matches\): with credentials: true, any site could read/,
    /^origins\[9\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.ai matches\)/,
    /^origins\[10\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.herokuapp\.com matches\)/,
    /^origins\[11\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.github\.io matches\)/,
    /^origins\[12\]: it lets in sites anyone can register \(https:\/\/zzportcullisprobe\.ngrok-free\.app matches\)/,
    /^origins\[13\]: https:\/\/\*\.herokuapp\.com lets in every site under herokuapp\.com, where anyone can have one: with credentials: true, any site could read/,
    /^origins\[14\]: \*\.github\.io lets in every site under github\.io/,
    /^origins\[15\]: \*\.co\.uk lets in every site under co\.uk/
  ])
  t.equal(problems.length, loose.length + registrable.length + wildcards.length)
  t.same(await corsProblems({ origins: [...loose, ...registrable, ...wildcards] }), [], 'without credentials, they load')

  // Subdomains of the operator's names, ports, fixed alternatives, a dot in a class, a lookahead, the scheme left open.
  const meant = ['/^https?:\\/\\/([a-z0-9-]+\\.)?example\\.com(:\\d+)?$/', '/^https:\\/\\/[a-z0-9-]+\\.example\\.com$/', '/^http:\\/\\/localhost:[0-9]{4}$/',
    '/^https:\\/\\/app\\.example\\.(?:com|org)$/', '/^https:\\/\\/[a-z0-9.-]+\\.example\\.com$/', '/^https:\\/\\/(?:.*\\.)?example\\.com$/', '/^https:\\/\\/app\\.example\\.com:.+$/',
    '/^(?!.*\\.old\\.example\\.com$)https:\\/\\/.+\\.example\\.com$/', '/^.+:\\/\\/app\\.example\\.com$/', '/^https:\\/\\/[a-z]+-staging\\.example\\.com$/i',
    '/^http:\\/\\/10\\.0\\.0\\.\\d+$/', '/^https:\\/\\/myapp\\.herokuapp\\.com$/', '*.example.co.uk']
  t.same(await corsProblems({ origins: meant, credentials: true }), [], 'what is meant loads with credentials')

  const warned = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: loose, match: { path: /* }, upstream: up, plugins: { cors: { origins: ${JSON.stringify([...meant, loose[0], loose[1], loose[4]])} } } }
`)
  t.teardown(() => warned.close())
  t.same(warned.logs.filter(l => String(l.msg).startsWith('cors: origins')).map(l => [l.level, l.msg]), [
    [40, `cors: origins[13] ${loose[0] as string}: an unescaped \`.*\` matches any characters, dots included: .*example lets in evilexample too,${subdomain}`],
    [40, `cors: origins[14] ${loose[1] as string}: an unescaped \`.*\` matches any characters, dots included: com.* lets in com.evil.net too,${subdomain}`],
    [40, `cors: origins[15] ${loose[4] as string}: it lets in more than the names it spells out (https://zzportcullisprobeexample.com matches),${subdomain}`]
  ], 'only the loose ones are warned of')
  for (const origin of ['https://evilexample.com', 'https://app.example.com.evil.net']) {
    const res = await request(`${warned.url}/`, { headers: { origin } })
    await res.body.dump()
    t.equal(res.headers['access-control-allow-origin'], origin, `what it warns of: ${origin}`)
  }
})

/** Near misses of the patterns below, at the longest Origin tried against a pattern: what makes them backtrack. */
const NEAR_MISSES = [`https://${'a'.repeat(280)}.example.co`, `https://${'a-'.repeat(140)}.example.co`, `https://${'a'.repeat(30)}!`]

t.test('a regular expression that can backtrack for long (ReDoS), with a flag V8\'s linear-time engine cannot run (i), is a config error, credentials or not; one that cannot still matches', async t => {
  // The i flag keeps these from the linear-time engine (linear.ts): without it they load (next test).
  const slow = ['/^https:\\/\\/([a-z0-9]+-?)+\\.example\\.com$/i', '/^https:\\/\\/(?:[a-z]+|\\w+)+\\.example\\.com$/i', '/^https:\\/\\/(\\w|\\d)*\\.example\\.com$/i',
    '/^https:\\/\\/(?:[a-z0-9]+-?){1,10}\\.example\\.com$/i', '/^https:\\/\\/(a*)*\\.example\\.com$/i', '/^https:\\/\\/[a-z0-9-]+-[a-z0-9-]+-[a-z0-9-]+\\.example\\.com$/i']
  for (const credentials of [false, true]) {
    const problems = await corsProblems({ origins: slow, credentials })
    t.match(problems, [
      /^origins\[0\]: `\(\[a-z0-9\]\+-\?\)\+` can match the same text in more than one way .*the time doubles with each character.*ReDoS.*e\.g\. `\[a-z0-9\]\+\(\?:-\[a-z0-9\]\+\)\*` for a label with hyphens, `\(\[a-z0-9-\]\+\\\.\)\*` for any subdomains$/,
      /^origins\[1\]: `\(\?:\[a-z\]\+\|\\w\+\)\+` can match the same text in more than one way/,
      /^origins\[2\]: `\(\\w\|\\d\)\*` can match the same text in more than one way/,
      /^origins\[3\]: `\(\?:\[a-z0-9\]\+-\?\)\{1,10\}` can match the same text in more than one way/,
      /^origins\[4\]: `\(a\*\)\*` can match the same text in more than one way/,
      /^origins\[5\]: `\[a-z0-9-\]\+`, `\[a-z0-9-\]\+` and `\[a-z0-9-\]\+` can each take the same characters, one after another: .*to the power 3, a ReDoS/
    ], `credentials: ${String(credentials)}`)
    t.equal(problems.length, slow.length)
  }

  const meant = ['/^https:\\/\\/[a-z0-9]+(?:-[a-z0-9]+)*\\.example\\.com$/', '/^https:\\/\\/([a-z0-9-]+\\.)*example\\.com$/', '/^https:\\/\\/[a-z0-9-]+-[a-z0-9]+\\.example\\.com$/']
  t.same(await corsProblems({ origins: meant, credentials: true }), [], 'what the hint says loads, as do two repetitions in a row')
  const gw2 = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: { origins: ${JSON.stringify(meant)}, credentials: true } } }
`)
  t.teardown(() => gw2.close())
  const cases: Array<[string, boolean]> = [['https://my-shop-2.example.com', true], ['https://a.b-c.example.com', true], ['https://example.com', true],
    ['https://a_b.example.com', false], ['https://a.example.co', false], [`https://${'a'.repeat(40)}.example.co`, false]]
  for (const [origin, allowed] of cases) {
    const res = await request(`${gw2.url}/`, { headers: { origin } })
    await res.body.dump()
    t.equal(res.headers['access-control-allow-origin'], allowed ? origin : undefined, origin)
  }
})

t.test('a pattern V8\'s linear-time engine can run loads however it backtracks, near misses answered; groups in a row matching nothing many ways, and a lookbehind that engine cannot run, are config errors', async t => {
  const ipv4 = '/^https:\\/\\/(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)$/'
  const linear = ['/^https:\\/\\/([a-z0-9]+-?)+\\.example\\.com$/', '/^https:\\/\\/(a*)*\\.example\\.com$/', '/^https:\\/\\/[a-z0-9-]+-[a-z0-9-]+-[a-z0-9-]+\\.example\\.com$/',
    `/^https:\\/\\/${'(?:[a-z]|\\w)'.repeat(28)}$/`, ipv4]
  t.same(await corsProblems({ origins: linear }), [])
  t.same(await corsProblems({ origins: [ipv4], credentials: true }), [], 'an IPv4 address pattern loads with credentials')
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: { origins: ${JSON.stringify(linear)} } } }
`)
  t.teardown(() => gw.close())
  const cases: Array<[string, boolean]> = [...NEAR_MISSES.map((origin): [string, boolean] => [origin, false]), ['https://my-shop-2.example.com', true],
    [`https://${'a'.repeat(28)}`, true], ['https://192.168.1.10', true], ['https://256.1.1.1', false]]
  for (const [origin, allowed] of cases) {
    const res = await request(`${gw.url}/`, { headers: { origin } })
    await res.body.dump()
    t.equal(res.headers['access-control-allow-origin'], allowed ? origin : undefined, origin.slice(0, 40))
  }

  // Many ways to match nothing (V8's backtracking compiler is exponential in them), and a lookbehind the check cannot read: refused on every Node.
  const refused = [`/^https:\\/\\/${'(?:|)'.repeat(24)}[a-z]+\\.example\\.com$/`, `/^https:\\/\\/${'(?:\\b|)'.repeat(20)}[a-z]+\\.example\\.com$/`,
    '/^https:\\/\\/(?:a?|b?){20}[a-z]+\\.example\\.com$/', `/^https:\\/\\/${'(?:|)'.repeat(24)}[a-z]+\\.example\\.com$/i`,
    '/^https:\\/\\/(?:[a-z](?<!!(?:[a-z](?<!![a-z]*[a-z]*))*))*\\.example\\.com$/i']
  for (const credentials of [false, true]) {
    t.match(await corsProblems({ origins: refused, credentials }), [
      /^origins\[0\]: `(?:\(\?:\|\))+` can match nothing in more than 1024 ways .*ReDoS.*e\.g\. `\(\?:a\|b\)\?`$/,
      /^origins\[1\]: `(?:\(\?:\\b\|\))+` can match nothing in more than 1024 ways/,
      /^origins\[2\]: `\(\?:a\?\|b\?\)\{20\}` can match nothing in more than 1024 ways/,
      /^origins\[3\]: `(?:\(\?:\|\))+` can match nothing in more than 1024 ways/,
      /^origins\[4\]: it uses a lookbehind \(`\(\?<!`\), which V8 reads backwards/
    ], `credentials: ${String(credentials)}`)
  }
})

t.test('with credentials, a regular expression gluing names anyone can register onto the names it spells out is a config error; the operator\'s own subdomains load', async t => {
  const glued = ['example(?:-[a-z0-9]+)?\\.com', 'example-[a-z]+\\.com', 'example\\w*\\.com', 'example\\d*\\.com', 'myapp[a-z0-9-]*\\.com', 'example[a-z-]*\\.co\\.uk',
    'app\\.example(?:-[a-z]+)?\\.com', 'example\\.[a-z]{2}', '([a-z0-9-]+\\.)?example\\.(?:com|[a-z]{2})', 'example\\.[^.]{2}']
  const probes = ['example-zzq.com', 'example-zzq.com', 'examplezzq.com', 'example909.com', 'myappzzq.com', 'examplezzq.co.uk', 'app.example-zzq.com', 'example.zz', 'example.zz', 'example.zz']
  const problems = await corsProblems({ origins: glued.map(r => `/^https:\\/\\/${r}$/`), credentials: true })
  t.same(problems, probes.map((probe, i) =>
    `origins[${i}]: it lets in more than the names it spells out (https://${probe} matches), which may be anyone's site; write the labels meant (any subdomain: ([a-z0-9-]+\\.)*), or list the origins`))
  const own = ['shop[0-9]*\\.example\\.com', 'pr-\\d+\\.preview\\.dev', 'api(?:-v[0-9]+)?\\.example\\.com', '(?:app|admin)[0-9]?\\.example\\.(?:com|io)', '[a-z]{2}\\.example\\.com',
    'app-[a-z0-9]+\\.example\\.co\\.uk', 'example\\.(?:com|org)', '192\\.168\\.\\d+\\.10']
  t.same(await corsProblems({ origins: own.map(r => `/^https:\\/\\/${r}$/`), credentials: true }), [], 'names under the operator\'s registrable domains, addresses')
})

t.test('a repeated group that can match nothing, with a least count above 1, is a config error (each iteration may match nothing until the count is met); counted characters still load', async t => {
  const slow = ['(?:[0-9]?){40}', '(?:[a-z]?){40}', '(?:a|b?){30}', '(?:[a-z0-9]|){20}']
  for (const credentials of [false, true]) {
    const problems = await corsProblems({ origins: slow.map(r => `/^https:\\/\\/${r}\\.example\\.com$/`), credentials })
    t.same(problems.map(p => p.split(': ')[0]), slow.map((_, i) => `origins[${i}]`), `credentials: ${String(credentials)}`)
    slow.forEach((r, i) => t.ok(problems[i]?.startsWith(`origins[${i}]: \`${r}\` repeats, a least number of times, a group that can match nothing`), problems[i] ?? 'none'))
  }
  t.same(await corsProblems({
    origins: ['/^https:\\/\\/[a-z0-9-]{0,61}\\.example\\.com$/', '/^https:\\/\\/(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+example\\.com$/', '/^https:\\/\\/(?:[0-9]?)+\\.example\\.com$/'],
    credentials: true
  }), [], 'a counted class, optional groups in a +')
})

t.test('a Netlify deploy preview pattern (a literal -- after the open part) loads with credentials; a Vercel branch pattern does not', async t => {
  t.same(await corsProblems({ origins: ['/^https:\\/\\/deploy-preview-\\d+--myapp\\.netlify\\.app$/'], credentials: true }), [])
  t.same(await corsProblems({ origins: ['/^https:\\/\\/myapp-git-[a-z0-9-]+-myteam\\.vercel\\.app$/'], credentials: true }), [
    'origins[0]: it lets in more than the names it spells out (https://myapp-git-zzq-myteam.vercel.app matches), which may be anyone\'s site; write the labels meant (any subdomain: ([a-z0-9-]+\\.)*), or list the origins'
  ])
})

t.test('parts in a row that read the same characters two ways, and escapes V8 reads as characters without u, are config errors with the i flag; forty names in repeated groups load and match', async t => {
  // The i flag keeps these from the linear-time engine (linear.ts): without it they load.
  const slow = [`/^https:\\/\\/${'(?:[a-z]|\\w)'.repeat(28)}$/i`, `/^https:\\/\\/${'[a-z0-9-]?'.repeat(28)}\\.example\\.com$/i`, '/^https:\\/\\/(?:\\8+)+x$/i', '/^https:\\/\\/(?:\\p{1,3})+x$/i']
  const problems = await corsProblems({ origins: slow })
  t.match(problems, [/^origins\[0\]: it can read `https:\/\/a+` in \d+ ways/i, /^origins\[1\]: it can read `https:\/\/[^`]*` in \d+ ways/i,
    /^origins\[2\]: `\(\?:\\8\+\)\+` can match the same text in more than one way/, /^origins\[3\]: `\(\?:\\p\{1,3\}\)\+` can match the same text/])
  t.equal(problems.length, slow.length)
  const names = ['app', 'api', 'admin', 'www', 'shop', 'blog', 'docs', 'help', 'mail', 'cdn', 'static', 'assets', 'auth', 'login', 'account', 'billing', 'pay', 'dash',
    'status', 'beta', 'dev', 'stage', 'test', 'demo', 'portal', 'store', 'news', 'media', 'img', 'video', 'search', 'mobile', 'm', 'support', 'forum', 'wiki', 'jobs',
    'careers', 'partners', 'events'].join('|')
  const origins = [`/^https:\\/\\/(?:(?:${names})-)*(?:(?:${names})\\.)*example\\.com$/`]
  t.same(await corsProblems({ origins, credentials: true }), [])
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: { origins: ${JSON.stringify(origins)}, credentials: true } } }
`)
  t.teardown(() => gw.close())
  for (const [origin, allowed] of [['https://app-beta.shop.docs.example.com', true], ['https://events.example.com', true], ['https://evil.example.com', false]] as const) {
    const res = await request(`${gw.url}/`, { headers: { origin } })
    await res.body.dump()
    t.equal(res.headers['access-control-allow-origin'], allowed ? origin : undefined, origin)
  }
})
