import t from 'tap'
import zlib from 'node:zlib'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { issues } from '../../test/helpers/config-issues.ts'
import { NOT_SETTABLE_KEY } from '../../test/helpers/header-edit-cases.ts'

let hits = 0
const up = await startUpstream((_req, res) => { hits++; res.end('upstream') })
t.teardown(() => up.close())
const notice = { error: 'maintenance', message: 'back at 06:00 UTC', details: 'x'.repeat(2000) }
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: gone
    match: { path: /v1/* }
    upstream: up
    plugins:
      request-termination: { status: 410, headers: { Sunset: "Sun, 01 Nov 2026 00:00:00 GMT", Link: "</v2>; rel=successor-version" }, body: "v1 is gone, use /v2" }
  - name: maintenance
    match: { path: /api/* }
    upstream: up
    plugins:
      request-termination: { headers: { retry-after: "3600" }, body: ${JSON.stringify(notice)} }
      compress: {}
  - { name: bare, match: { path: /bare }, upstream: up, plugins: { request-termination: {} } }
  - { name: page, match: { path: /page }, upstream: up, plugins: { request-termination: { headers: { Content-Type: text/html }, body: "<p>down</p>" } } }
`)
t.teardown(() => gw.close())

t.test('a fixed status, headers and text body', async t => {
  const res = await request(`${gw.url}/v1/users`, { method: 'POST', body: 'ignored' })
  t.equal(res.statusCode, 410)
  t.equal(res.headers.sunset, 'Sun, 01 Nov 2026 00:00:00 GMT')
  t.equal(res.headers.link, '</v2>; rel=successor-version')
  t.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
  t.equal(await res.body.text(), 'v1 is gone, use /v2')
})

t.test('a JSON body; the reply goes through compress like any response', async t => {
  const res = await request(`${gw.url}/api/x`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '3600')
  t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(res.headers['content-encoding'], 'gzip')
  t.same(JSON.parse(zlib.gunzipSync(Buffer.from(await res.body.arrayBuffer())).toString()), notice)
})

t.test('defaults: 503 and no body', async t => {
  const res = await request(`${gw.url}/bare`)
  t.equal(res.statusCode, 503)
  t.equal(await res.body.text(), '')
  t.equal(hits, 0, 'the upstream was never called')
})

t.test('a text body keeps the Content-Type configured, in any case', async t => {
  const res = await request(`${gw.url}/page`)
  t.equal(res.headers['content-type'], 'text/html')
  t.equal(await res.body.text(), '<p>down</p>')
})

t.test('a body or a content header with 204, 205 or 304 is a config error at its key; a 1xx status, any config', async t => {
  const load = (plugin: string) => startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { request-termination: ${plugin} } }
`)
  await t.rejects(load('{ status: 204, body: "hello there" }'),
    { message: /test\.yaml:7:\d+ routes\[0\]\.plugins\.request-termination\.body: a 204 response has no content: remove it, or answer another status/ })
  await t.rejects(load('{ status: 304, body: { a: 1 } }'), { message: /routes\[0\]\.plugins\.request-termination\.body: a 304 response has no content/ })
  await t.rejects(load('{ status: 204, headers: { Content-Type: text/plain } }'),
    { message: /routes\[0\]\.plugins\.request-termination\.headers\.Content-Type: a 204 response has no content/ })
  await t.rejects(load('{ status: 205, body: "reset" }'), { message: /routes\[0\]\.plugins\.request-termination\.body: a 205 response has no content/ })
  await t.rejects(load('{ status: 205, headers: { content-type: text/plain } }'),
    { message: /routes\[0\]\.plugins\.request-termination\.headers\.content-type: a 205 response has no content/ })
  await t.rejects(load('{ status: 101 }'), { message: /routes\[0\]\.plugins\.request-termination\.status: must be >= 200/ })
})

/** A config whose one route answers `hi` with request-termination's `headers` (as YAML). */
const terminating = (headers: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      request-termination:
        body: hi
        headers: ${headers}
`

// The names request-headers and response-headers refuse: the gateway frames the reply itself.
t.test('framing and hop-by-hop headers are config errors at their key', async t => {
  const found = await issues(t, terminating('{ Content-Length: "5", transfer-encoding: chunked, Connection: "keep-alive, x-request-id", Proxy-Authenticate: Basic, Retry-After: "60" }'))
  const at = 'routes[0].plugins.request-termination.headers'
  t.same(found.map(i => i.replace(/^gw\.yaml:12:\d+ /, '')),
    ['Content-Length', 'transfer-encoding', 'Connection', 'Proxy-Authenticate'].map(h => `${at}.${h}: "${h}" ${NOT_SETTABLE_KEY}`))
})

t.test('Host is a config error at its key, in any case: the gateway drops it from every response', async t => {
  const found = await issues(t, terminating('{ Retry-After: "60", HOST: a.example }'))
  t.same(found, ['gw.yaml:12:45 routes[0].plugins.request-termination.headers.HOST: Host cannot be sent: it is a request header, and the gateway drops it from every response'])
})

t.test('two names of one header (another case) are a config error at the later key, naming both: only one would apply, silently', async t => {
  const found = await issues(t, terminating('{ X-A: "1", x-a: "2", Content-Type: text/html, content-type: a/b, X-B: "3", X-b: "4", x-B: "5" }'))
  const at = 'routes[0].plugins.request-termination.headers'
  const twins = (first: string, later: string) => `"${first}" and "${later}" are one header (names are case-insensitive): only one of them would apply; keep one`
  t.same(found, [
    `gw.yaml:12:35 ${at}.x-a: ${twins('X-A', 'x-a')}`,
    `gw.yaml:12:79 ${at}.content-type: ${twins('Content-Type', 'content-type')}`,
    `gw.yaml:12:99 ${at}.X-b: ${twins('X-B', 'X-b')}`,
    `gw.yaml:12:109 ${at}.x-B: ${twins('X-B', 'x-B')}`
  ])
})

t.test('a 204 without a body answers with no content headers', async t => {
  const gw204 = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { request-termination: { status: 204, headers: { Cache-Control: no-store } } } }
`)
  t.teardown(() => gw204.close())
  const res = await request(`${gw204.url}/x`)
  t.equal(res.statusCode, 204)
  t.equal(res.headers['cache-control'], 'no-store')
  t.notOk('content-type' in res.headers)
  t.notOk('content-length' in res.headers)
  t.equal(await res.body.text(), '')
})

t.test('a Content-Encoding but identity is a config error at its key, compress or not: the body is sent as written', async t => {
  const message = 'Content-Encoding cannot be set (but to identity): the body is sent as written, never encoded, so clients would decode plain bytes; ' +
    'compress on the route encodes the reply itself'
  const at = 'routes[0].plugins.request-termination.headers'
  t.same(await issues(t, terminating('{ Content-Encoding: gzip }')), [`gw.yaml:12:38 ${at}.Content-Encoding: ${message}`])
  t.same(await issues(t, `${terminating('{ content-encoding: " BR " }')}      compress: {}\n`), [`gw.yaml:12:38 ${at}.content-encoding: ${message}`])
  const gwId = await startGateway(`${terminating('{ Content-Encoding: Identity }')}      compress: { minSize: 0 }\n`)
  t.teardown(() => gwId.close())
  const res = await request(`${gwId.url}/x`, { headers: { 'accept-encoding': 'gzip' } })
  t.equal(res.headers['content-encoding'], 'gzip', 'identity is allowed: compress encodes the reply')
  t.equal(zlib.gunzipSync(Buffer.from(await res.body.arrayBuffer())).toString(), 'hi')
})

// Unlike response-headers' (which runs after compress), the reply's validators go through compress.
t.test('on a compress route, a strong ETag and digests set are weakened and dropped when compress encodes the reply, kept when it does not', async t => {
  const gwTag = await startGateway(`${terminating('{ ETag: \'"v1"\', Content-Digest: "sha-256=:AAAA:" }')}      compress: { minSize: 0 }\n`)
  t.teardown(() => gwTag.close())
  const get = async (encoding: string) => {
    const res = await request(`${gwTag.url}/x`, { headers: { 'accept-encoding': encoding } })
    await res.body.dump()
    return [res.headers.etag, res.headers['content-digest'], res.headers['content-encoding']]
  }
  t.same(await get('gzip'), ['W/"v1"', undefined, 'gzip'])
  t.same(await get('identity'), ['"v1"', 'sha-256=:AAAA:', undefined])
})
