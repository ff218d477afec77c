import t, { type Test } from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'

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
        'access-control-max-age': '86400'
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
  - { name: creds, match: { path: /creds }, upstream: up, plugins: { cors: { origins: ["*"], credentials: true, methods: [GET, POST] } } }
  - { name: down, match: { path: /down }, upstream: down, plugins: { cors: { origins: [https://app.example.com] } } }
  - { name: leaky, match: { path: /leaky }, upstream: up, plugins: { cors: { origins: ["HTTPS://Config.Example.com/", "/^https:\\\\/\\\\/[a-z]+\\\\.flagged\\\\.dev$/i"] } } }
  - { name: leaky-wild, match: { path: /leaky/wild }, upstream: up, plugins: { cors: { origins: ["https://*.example.net"] } } }
  - { name: leaky-creds, match: { path: /leaky/creds }, upstream: up, plugins: { cors: { origins: [https://app.example.com], credentials: true, exposeHeaders: [X-Total] } } }
  - { name: sandboxed, match: { path: /sandboxed }, upstream: up, plugins: { cors: { origins: ["null"], credentials: true } } }
  - { name: any-regex, match: { path: /any-regex }, upstream: up, plugins: { cors: { origins: ["/^.*$/"], credentials: true } } }
  - { name: fenced, match: { path: /fenced }, upstream: up, plugins: { cors: { origins: [https://app.example.com] }, ip-filter: { deny: [127.0.0.0/8] } } }
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
  t.equal(creds.headers['access-control-allow-origin'], 'https://x.test', 'never * with credentials: the origin is echoed')
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
  for (const h of ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers']) t.notOk(h in refused.headers, h)
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

const UPSTREAM_CORS = ['access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age']

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

t.test('with credentials, Origin: null is allowed only when listed: never by * or a pattern', async t => {
  for (const path of ['/creds', '/any-regex']) {
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
