import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'

// A config is UTF-8 text: its header values go out as those bytes, as its bodies do (and as nginx
// sends its config's). Node and undici hold header values as latin1 strings (one char a byte).
const NAME = 'attachment; filename="résumé ✓.pdf"'
const UTF8 = Buffer.from(NAME, 'utf8')
const bytes = (latin1: string | undefined) => latin1 === undefined ? undefined : Buffer.from(latin1, 'latin1')

let seen: IncomingHttpHeaders = {}
const up = await startUpstream((req, res) => { seen = req.headers; res.writeHead(200, { 'content-length': '2' }).end('ok') })
t.teardown(() => up.close())

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: edits, match: { path: /edits }, upstream: up, plugins: { request-headers: { set: { X-Name: '${NAME}' } }, response-headers: { set: { X-Name: '${NAME}' } } } }
  - { name: terminated, match: { path: /terminated }, upstream: up, plugins: { request-termination: { status: 200, headers: { Content-Disposition: '${NAME}' }, body: '${NAME}' } } }
`)
t.teardown(() => gw.close())

const get = (path: string) => rawRequest(Number(new URL(gw.url).port), [`GET ${path} HTTP/1.1`, 'Host: gw.test', 'Connection: close'])

t.test('request-headers and response-headers send a value as its UTF-8 bytes', async t => {
  const res = await get('/edits')
  t.equal(res.status, 200)
  t.same(bytes(seen['x-name'] as string), UTF8, 'to the upstream')
  t.same(headerValues(res, 'x-name').map(bytes), [UTF8], 'to the client')
})

t.test('request-termination sends a header value as its UTF-8 bytes, as it does the body', async t => {
  const res = await get('/terminated')
  t.equal(res.status, 200)
  t.same(headerValues(res, 'content-disposition').map(bytes), [UTF8])
  t.same(bytes(res.body), UTF8, 'the body, written the same way')
})

t.test('a value is refused for line breaks and control characters only', async t => {
  const problems = await issues(t, ONE_ROUTE_PLUGINS + `      response-headers: { set: { X-Ok: "✓ é 中", X-Tab: "a\\tb", X-Nul: "a\\0b", X-Bell: "a\\ab", X-Del: "a\\x7fb", X-C1: "a\\x85b", X-Cr: "a\\rb" } }
      request-termination: { headers: { X-Ok: "✓", X-Lf: "a\\nb" } }
`)
  t.same(problems.map(p => p.replace(/^gw\.yaml:\d+:\d+ routes\[0\]\.plugins\./, '')), [
    ...['X-Nul', 'X-Bell', 'X-Del', 'X-C1', 'X-Cr'].map(h => `response-headers.set.${h}: must be a valid header value (no line breaks or control characters)`),
    'request-termination.headers.X-Lf: must be a valid header value (no line breaks or control characters)'
  ])
})
