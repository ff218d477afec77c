import t from 'tap'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { startGateway } from './helpers/gateway.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'

// Content-Disposition's bytes go out as they came, with a Content-Length before it (Node re-read
// them as UTF-8 there: nodejs/node#46528), as set by response-headers (its UTF-8 bytes) or by a
// response hook under any case of its name, and in an upstream's refusal of an upgrade.
const utf8 = Buffer.from('attachment; filename="résumé ✓.pdf"', 'utf8')
const latin1 = Buffer.from('attachment; filename="résumé.pdf"', 'latin1')
const upstream = createServer(socket => socket.once('data', (request: Buffer) => {
  const value = request.includes('GET /latin1 ') ? latin1 : utf8
  // /named and /extra: none, a plugin sets one.
  const field = request.includes('GET /named ') || request.includes('GET /extra ') ? [] : [Buffer.from('Content-Disposition: '), value, Buffer.from('\r\n')]
  socket.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n'), ...field, Buffer.from('Connection: close\r\n\r\nok')]))
}))
await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
t.teardown(() => upstream.close())

const dir = t.testdir({})
sharedWithPlugins('disposition', utf8.toString('latin1'))
writeUserPlugin(dir, 'named', 900, "{ onResponse: (res: any) => { res.headers['Content-Disposition'] = shared('disposition') } }")
// A request hook's extra response header, on a route without response hooks.
writeUserPlugin(dir, 'extra', 900, "{ onRequest: (req: any) => { req.extraResponseHeaders['Content-Disposition'] = shared('disposition') } }")
const gw = await startGateway(`
loadPlugins: [ ./named.ts, ./extra.ts ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" } ] }
routes:
  - { name: set, match: { path: /set }, upstream: up, plugins: { response-headers: { set: { content-disposition: 'attachment; filename="résumé ✓.pdf"' } } } }
  - { name: named, match: { path: /named }, upstream: up, plugins: { named: {} } }
  - { name: extra, match: { path: /extra }, upstream: up, plugins: { extra: {} } }
  - { name: all, match: { path: /* }, upstream: up, upgrade: [foo] }
`, { file: join(dir, 'gw.yaml') })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)
const disposition = async (path: string, upgrade = false) => {
  const res = await rawRequest(port, [`GET ${path} HTTP/1.1`, 'Host: gw.test', ...upgrade ? ['Connection: Upgrade', 'Upgrade: foo'] : ['Connection: close']])
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

t.test('one a response hook sets as Content-Disposition (any case of the name) too', async t => {
  t.same(await disposition('/named'), { status: 200, disposition: [utf8.toString('hex')], body: 'ok' })
})

t.test('one a request hook adds as an extra response header (any case of the name) too', async t => {
  t.same(await disposition('/extra'), { status: 200, disposition: [utf8.toString('hex')], body: 'ok' })
})

t.test("an upstream's answer to an upgrade other than a 101 too", async t => {
  t.same(await disposition('/utf8', true), { status: 200, disposition: [utf8.toString('hex')], body: 'ok' })
})
