import t from 'tap'
import { join } from 'node:path'
import { startGateway } from './helpers/gateway.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'

// A reply without body says so (Content-Length: 0) rather than go out chunked (`0\r\n\r\n`), as if a body were coming.
const dir = t.testdir({})
writeUserPlugin(dir, 'framed', 100, "{ onRequest: () => ({ status: 200, headers: { 'Content-Length': '0' } }) }")

const gw = await startGateway(`
loadPlugins: [ ./framed.ts ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { name: closed, match: { path: /closed }, upstream: up, plugins: { request-termination: { status: 503, headers: { Retry-After: "60" } } } }
  - { name: reset, match: { path: /reset }, upstream: up, plugins: { request-termination: { status: 205 } } }
  - { name: none, match: { path: /none }, upstream: up, plugins: { request-termination: { status: 204 } } }
  - { name: moved, match: { path: /moved }, upstream: up, plugins: { redirect: { to: /elsewhere, status: 301 } } }
  - { name: framed, match: { path: /framed }, upstream: up, plugins: { framed: {} } }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

const send = (method: string, path: string) => rawRequest(port, [`${method} ${path} HTTP/1.1`, 'Host: gw.test', 'Connection: close'])
const framing = (res: Awaited<ReturnType<typeof send>>) => ({ status: res.status, length: headerValues(res, 'content-length'), te: headerValues(res, 'transfer-encoding'), body: res.body })

t.test('a reply without body that may have one goes out with Content-Length: 0, not chunked', async t => {
  for (const [path, status] of [['/closed', 503], ['/reset', 205], ['/moved', 301], ['/framed', 200]] as const) {
    t.same(framing(await send('GET', path)), { status, length: ['0'], te: [], body: '' }, path)
  }
})

t.test('a 204 has neither; a HEAD keeps its head as it was', async t => {
  t.same(framing(await send('GET', '/none')), { status: 204, length: [], te: [], body: '' })
  t.same(framing(await send('HEAD', '/closed')), { status: 503, length: [], te: [], body: '' })
})
