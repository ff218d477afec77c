import t from 'tap'
import { join } from 'node:path'
import { Transform } from 'node:stream'
import { startGateway } from './helpers/gateway.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// A reply without body says so (Content-Length: 0) rather than go out chunked (`0\r\n\r\n`), as if a body were coming.
const dir = t.testdir({})
writeUserPlugin(dir, 'framed', 100, "{ onRequest: () => ({ status: 200, headers: { 'Content-Length': '0' } }) }")
// An error page: a 503's body written by a stream, all of it as the (empty) body ends.
sharedWithPlugins('error-page', () => new Transform({ transform (_c, _e, cb) { cb() }, flush (cb) { cb(null, 'sorry, closed') } }))
writeUserPlugin(dir, 'page', 900, "{ onResponse: (res: any) => { if (res.status === 503) res.pipeThrough(shared('error-page')()) } }")

const gw = await startGateway(`
loadPlugins: [ ./framed.ts, ./page.ts ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { name: closed, match: { path: /closed }, upstream: up, plugins: { request-termination: { status: 503, headers: { Retry-After: "60" } } } }
  - { name: reset, match: { path: /reset }, upstream: up, plugins: { request-termination: { status: 205 } } }
  - { name: none, match: { path: /none }, upstream: up, plugins: { request-termination: { status: 204 } } }
  - { name: moved, match: { path: /moved }, upstream: up, plugins: { redirect: { to: /elsewhere, status: 301 } } }
  - { name: framed, match: { path: /framed }, upstream: up, plugins: { framed: {} } }
  - { name: page, match: { path: /page }, upstream: up, plugins: { page: {}, request-termination: { status: 503 } } }
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

t.test("a response plugin's stream gives the reply a body: its own, chunked, no Content-Length: 0 in its way", async t => {
  t.same(framing(await send('GET', '/page')), { status: 503, length: [], te: ['chunked'], body: 'd\r\nsorry, closed\r\n0\r\n\r\n' })
})
