import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { until } from '../../test/helpers/wait.ts'
import { startOtlpReceiver } from '../../test/helpers/otlp-receiver.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'
import { NOT_SETTABLE_KEY } from '../../test/helpers/header-edit-cases.ts'

// `headers` go on every export: a name that is no token or a value with a control character made
// every export fail (ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR), Content-Length misframed them, Host
// named another site, Content-Type was silently replaced. Each is a config error at its key.

const at = 'routes[0].plugins.opentelemetry.headers'
const problems = async (headers: string) => (await issues(t, `${ONE_ROUTE_PLUGINS}      opentelemetry:\n        headers: ${headers}\n`))
  .map(i => i.replace(/^gw\.yaml:\d+:\d+ /, ''))

t.test('a name that is no HTTP token', async t => {
  t.same(await problems('{ "bad name": x }'), [`${at}.bad name: "bad name" ${NOT_SETTABLE_KEY}`])
  t.same(await problems('{ "x-a:b": x }'), [`${at}.x-a:b: "x-a:b" ${NOT_SETTABLE_KEY}`])
})

t.test('a value with a line break, NUL or another control character', async t => {
  const message = 'must be a valid header value (no line breaks or control characters)'
  for (const value of ['"a\\r\\nx-injected: 1"', '"a\\nb"', '"a\\0b"', '"a\\x01b"', '"a\\x7fb"']) {
    t.same(await problems(`{ x-api-key: ${value} }`), [`${at}.x-api-key: ${message}`], value)
  }
})

t.test('hop-by-hop and framing headers, as request-termination refuses them', async t => {
  t.same(await problems('{ content-length: "5", Transfer-Encoding: chunked, connection: close, Proxy-Authorization: x, te: trailers }'),
    ['content-length', 'Transfer-Encoding', 'connection', 'Proxy-Authorization', 'te'].map(h => `${at}.${h}: "${h}" ${NOT_SETTABLE_KEY}`))
})

t.test("the exporter's own headers", async t => {
  t.same(await problems('{ Host: collector.example, content-type: text/plain, Content-Encoding: gzip, user-agent: me, x-api-key: ok }'),
    ['Host', 'content-type', 'Content-Encoding', 'user-agent'].map(h =>
      `${at}.${h}: "${h}" is the exporter's own (Host from endpoint, Content-Type, Content-Encoding, User-Agent): it cannot be set`))
})

// `Authorization` and `authorization` both given: one export header, one of the two values sent, silently.
t.test('two names of one header (another case) are a config error at the later key, naming both, as in request-termination', async t => {
  const twins = (first: string, later: string) => `"${first}" and "${later}" are one header (names are case-insensitive): only one of them would apply; keep one`
  t.same(await problems('{ Authorization: "Bearer a", authorization: "Bearer b", x-tenant: t, X-Tenant: u, x-fine: ok }'),
    [`${at}.authorization: ${twins('Authorization', 'authorization')}`, `${at}.X-Tenant: ${twins('x-tenant', 'X-Tenant')}`])
})

t.test('a value past Latin-1 goes as its UTF-8 bytes, and the export succeeds', async t => {
  const receiver = await startOtlpReceiver()
  const up = await startUpstream()
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
plugins:
  opentelemetry: { endpoint: "${receiver.url}", headers: { x-tenant: "équipe ✓", x-api-key: "k\\t1" }, flushInterval: 10ms }
routes:
  - { name: r, match: { path: /r }, upstream: up }
`)
  t.teardown(() => Promise.all([gw.close(), up.close(), receiver.close()]))
  await (await request(`${gw.url}/r`)).body.dump()
  t.ok(await until(() => receiver.spans.length > 0), 'the span was exported')
  const sent = receiver.exports[0]
  t.equal(Buffer.from(String(sent?.['x-tenant']), 'latin1').toString('utf8'), 'équipe ✓')
  t.equal(sent?.['x-api-key'], 'k\t1')
})
