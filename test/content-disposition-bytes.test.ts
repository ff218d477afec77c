import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { startGateway } from './helpers/gateway.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'

// Content-Disposition's bytes go out as they came, with a Content-Length before it (Node re-read
// them as UTF-8 there: nodejs/node#46528) and as set by response-headers (its UTF-8 bytes).
const utf8 = Buffer.from('attachment; filename="résumé ✓.pdf"', 'utf8')
const latin1 = Buffer.from('attachment; filename="résumé.pdf"', 'latin1')
const upstream = createServer(socket => socket.once('data', (request: Buffer) => {
  const value = request.includes('GET /latin1 ') ? latin1 : utf8
  socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Disposition: '), value, Buffer.from('\r\nConnection: close\r\n\r\nok')]))
}))
await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
t.teardown(() => upstream.close())

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" } ] }
routes:
  - { name: set, match: { path: /set }, upstream: up, plugins: { response-headers: { set: { content-disposition: 'attachment; filename="résumé ✓.pdf"' } } } }
  - { name: all, match: { path: /* }, upstream: up }
`)
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)
const disposition = async (path: string) => {
  const res = await rawRequest(port, [`GET ${path} HTTP/1.1`, 'Host: gw.test', 'Connection: close'])
  return { status: res.status, disposition: headerValues(res, 'content-disposition').map(v => Buffer.from(v, 'latin1').toString('hex')), body: res.body }
}

t.test("an upstream's UTF-8 filename reaches the client byte for byte", async t => {
  t.same(await disposition('/utf8'), { status: 200, disposition: [utf8.toString('hex')], body: 'ok' })
})

t.test("an upstream's Latin-1 filename too (Node threw on it: no answer)", async t => {
  t.same(await disposition('/latin1'), { status: 200, disposition: [latin1.toString('hex')], body: 'ok' })
})

t.test('one response-headers sets is sent as its UTF-8 bytes', async t => {
  t.same(await disposition('/set'), { status: 200, disposition: [utf8.toString('hex')], body: 'ok' })
})
