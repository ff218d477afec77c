import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { headerEditTests } from '../../test/helpers/header-edit-cases.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

// The upstream sends the headers; the client reports what reached it.
headerEditTests(t, 'response-headers', async (t, edits, headers) => {
  const up = await startUpstream((_req, res) => { res.writeHead(200, headers).end('ok') })
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      response-headers:${edits}
`)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/`)
  await res.body.dump()
  return res.headers
})

t.test('outermost: every answer of the route gets the edits, plugin replies and cache hits included', async t => {
  const body = 'cached '.repeat(200)
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', 'x-powered-by': 'upstream' }).end(body)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`
consumers:
  - { id: app, credentials: { key-auth: { keys: [ "an-api-key-0123456789abcdef" ] } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      cors: { origins: [ "https://app.example.com" ] }
      key-auth: {}
      rate-limit: { limits: [ { name: n, requests: 2, window: 1h } ] }
      cache: { cacheAuthorized: true }
      compress: { minSize: 0 }
      response-headers: { set: { x-frame-options: DENY }, remove: [ x-powered-by ] }
`)
  t.teardown(() => gw.close())
  const get = async (headers: Record<string, string>, method: 'GET' | 'OPTIONS' = 'GET') => {
    const res = await request(`${gw.url}/page`, { method, headers })
    await res.body.dump()
    return { status: res.statusCode, headers: res.headers }
  }
  const key = { 'x-api-key': 'an-api-key-0123456789abcdef', 'accept-encoding': 'gzip' }
  const answers = {
    preflight: await get({ origin: 'https://app.example.com', 'access-control-request-method': 'GET' }, 'OPTIONS'),
    unauthorized: await get({}),
    miss: await get(key),
    hit: await get(key),
    limited: await get(key)
  }
  t.same(Object.values(answers).map(a => a.status), [204, 401, 200, 200, 429])
  t.match(answers.hit.headers['cache-status'], /hit/, 'the second answer is the cache\'s')
  for (const [name, a] of Object.entries(answers)) {
    t.equal(a.headers['x-frame-options'], 'DENY', `${name}: header set`)
    t.equal(a.headers['x-powered-by'], undefined, `${name}: header removed`)
  }
  t.equal(answers.hit.headers['content-encoding'], 'gzip', 'compress still encodes the hit')
})

t.test('Date may not be removed (the gateway writes one on every response): a config error; renamed from or set, it may', async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      response-headers:
        remove: [ server, Date ]
        rename: { date: x-upstream-date }
`), [
    'gw.yaml:11:27 routes[0].plugins.response-headers.remove[1]: Date cannot be removed: the gateway writes the current date on every response that has none (RFC 9110 6.6.1)'
  ])
})

t.test('Host may not be set or renamed from or to (the gateway drops it from every response): a config error; removed, it may', async t => {
  const message = 'Host cannot be set or renamed from or to on a response: it is a request header, and the gateway drops it from every response'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      response-headers:
        remove: [ host ]
        rename: { x-host: Host, host: x-origin-host, x-a: x-b }
        set: { HOST: a.example, x-c: d }
`), [
    `gw.yaml:12:27 routes[0].plugins.response-headers.rename.x-host: ${message}`,
    `gw.yaml:12:39 routes[0].plugins.response-headers.rename.host: ${message}`,
    `gw.yaml:13:22 routes[0].plugins.response-headers.set.HOST: ${message}`
  ])
})

t.test('set: { vary } adds its names to the Vary there (compress\'s, cors\'s, the upstream\'s), never replaces them', async t => {
  const body = JSON.stringify({ items: 'x'.repeat(4096) })
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', vary: 'Accept-Language' }).end(body)
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: both
    match: { path: /both }
    upstream: up
    plugins:
      cors: { origins: [ "https://app.example.com" ] }
      compress: {}
      response-headers: { set: { Vary: "X-Tenant, origin" } }
  - name: replaced
    match: { path: /replaced }
    upstream: up
    plugins:
      response-headers: { remove: [ vary ], set: { vary: X-Tenant } }
`)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/both`, { headers: { 'accept-encoding': 'gzip', origin: 'https://app.example.com' } })
  await res.body.dump()
  t.equal(res.headers['content-encoding'], 'gzip')
  const names = String(res.headers.vary).split(',').map(n => n.trim().toLowerCase())
  t.same(names.sort(), ['accept-encoding', 'accept-language', 'origin', 'x-tenant'], 'every name once: none dropped, none repeated')
  const replaced = await request(`${gw.url}/replaced`)
  await replaced.body.dump()
  t.equal(replaced.headers.vary, 'x-tenant', 'removed first (a route with no plugin adding to Vary), then set: the upstream\'s replaced')
})

t.test('Vary may not be removed or renamed from or to on a route with compress or cors: a config error', async t => {
  const config = (plugins: string) => `${ONE_ROUTE_PLUGINS}${plugins}`
  const message = (plugins: string) => `Vary cannot be removed or replaced on a route with ${plugins}, which add to it: a cache in front would serve the response to clients it does not fit; set: { vary: ... } adds names to it`
  t.same(await issues(t, config(`      compress: {}
      response-headers: { remove: [ x-a, Vary ], rename: { vary: x-vary, x-b: VARY, x-c: x-d } }
`)), [
    `gw.yaml:11:42 routes[0].plugins.response-headers.remove[1]: ${message('compress')}`,
    `gw.yaml:11:66 routes[0].plugins.response-headers.rename.vary: ${message('compress')}`,
    `gw.yaml:11:79 routes[0].plugins.response-headers.rename.x-b: ${message('compress')}`
  ])
  t.same(await issues(t, config(`      cors: { origins: [ "https://a.example" ] }
      compress: {}
      response-headers: { remove: [ vary ] }
`)), [`gw.yaml:12:37 routes[0].plugins.response-headers.remove[0]: ${message('cors and compress')}`])
})

t.test('on a route with compress, Content-Encoding may not be removed, renamed or set, nor ETag set strong: a config error', async t => {
  const coding = 'Content-Encoding cannot be removed, renamed from or to, or set on a route with compress: it says how compress encoded the body sent to each client, which then could not read it'
  const etag = 'ETag cannot be set to a strong validator or renamed onto on a route with compress: the encoded and the plain body would share it (RFC 9110 8.8.1); set a weak one (W/"...")'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      compress: {}
      response-headers:
        remove: [ Content-Encoding, etag ]
        rename: { content-encoding: x-a, x-b: CONTENT-ENCODING, x-etag: ETag, etag: x-c }
        set: { content-encoding: gzip, etag: '"v1"' }
`), [
    `gw.yaml:12:19 routes[0].plugins.response-headers.remove[0]: ${coding}`,
    `gw.yaml:13:37 routes[0].plugins.response-headers.rename.content-encoding: ${coding}`,
    `gw.yaml:13:47 routes[0].plugins.response-headers.rename.x-b: ${coding}`,
    `gw.yaml:13:73 routes[0].plugins.response-headers.rename.x-etag: ${etag}`,
    `gw.yaml:14:34 routes[0].plugins.response-headers.set.content-encoding: ${coding}`,
    `gw.yaml:14:46 routes[0].plugins.response-headers.set.etag: ${etag}`
  ])
  // Without compress (cors adds to Vary only), or a weak ETag: allowed.
  await parseConfig(`${ONE_ROUTE_PLUGINS}      cors: { origins: [ "https://a.example" ] }
      response-headers: { remove: [ content-encoding ], set: { etag: '"v1"' } }
`, 'gw.yaml', {})
  await parseConfig(`${ONE_ROUTE_PLUGINS}      compress: {}
      response-headers: { remove: [ etag ], set: { etag: 'W/"v1"' } }
`, 'gw.yaml', {})
})

t.test('on a route with compress, digests and Accept-Ranges may not be set or renamed onto: a config error (false for an encoded body)', async t => {
  const message = 'Content-Digest, Repr-Digest, Content-MD5, Digest and Accept-Ranges cannot be set or renamed onto on a route with compress: ' +
    'they describe the bytes sent, which compress changes for each client (and removes them when it does); Accept-Ranges: none may be set'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      compress: {}
      response-headers:
        remove: [ content-digest ]
        rename: { x-a: Repr-Digest, content-md5: x-b }
        set: { content-digest: 'sha-256=:AAAA:', Digest: SHA-256=BBBB, content-md5: Q2hlY2s=, accept-ranges: bytes, x-c: d }
`), [
    `gw.yaml:13:24 routes[0].plugins.response-headers.rename.x-a: ${message}`,
    `gw.yaml:14:32 routes[0].plugins.response-headers.set.content-digest: ${message}`,
    `gw.yaml:14:58 routes[0].plugins.response-headers.set.Digest: ${message}`,
    `gw.yaml:14:85 routes[0].plugins.response-headers.set.content-md5: ${message}`,
    `gw.yaml:14:110 routes[0].plugins.response-headers.set.accept-ranges: ${message}`
  ])
  // Removed, renamed from, Accept-Ranges: none (true of any body), or without compress: allowed.
  await parseConfig(`${ONE_ROUTE_PLUGINS}      compress: {}
      response-headers: { remove: [ digest ], rename: { content-digest: x-upstream-digest }, set: { Accept-Ranges: ' None ' } }
`, 'gw.yaml', {})
  await parseConfig(`${ONE_ROUTE_PLUGINS}      response-headers: { set: { content-digest: 'sha-256=:AAAA:', accept-ranges: bytes } }
`, 'gw.yaml', {})
})

t.test('on a route with cors, Access-Control-* may not be set, removed or renamed from or to: a config error (cors answers them)', async t => {
  const message = 'Access-Control-* headers cannot be set, removed, or renamed from or to on a route with cors: cors answers them from its config ' +
    '(origins, credentials, exposeHeaders...); set them there'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      cors: { origins: [ "https://a.example" ], credentials: true }
      response-headers:
        remove: [ x-a, Access-Control-Max-Age ]
        rename: { access-control-expose-headers: x-a, x-b: ACCESS-CONTROL-ALLOW-HEADERS, x-c: x-d }
        set: { Access-Control-Allow-Origin: "*", x-e: f }
`), [
    `gw.yaml:12:24 routes[0].plugins.response-headers.remove[1]: ${message}`,
    `gw.yaml:13:50 routes[0].plugins.response-headers.rename.access-control-expose-headers: ${message}`,
    `gw.yaml:13:60 routes[0].plugins.response-headers.rename.x-b: ${message}`,
    `gw.yaml:14:45 routes[0].plugins.response-headers.set.Access-Control-Allow-Origin: ${message}`
  ])
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  cors: { origins: [ "https://a.example" ], credentials: true }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { response-headers: { set: { access-control-allow-origin: "*" } } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { cors: false, response-headers: { set: { access-control-allow-origin: "*" } } } }
`), [`gw.yaml:8:118 routes[0].plugins.response-headers.set.access-control-allow-origin: ${message}`], 'a top-level cors counts; a route that turns it off may')
  // Without cors, the route's CORS headers are response-headers' to write.
  await parseConfig(`${ONE_ROUTE_PLUGINS}      response-headers: { set: { access-control-allow-origin: "*" }, remove: [ access-control-max-age ] }
`, 'gw.yaml', {})
})
