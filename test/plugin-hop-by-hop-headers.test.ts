import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { h2Connect, h2Request } from './helpers/http2.ts'
import { writeUserPlugin } from './helpers/user-plugin.ts'

// Hop-by-hop headers a plugin sets on a response (in onResponse, in a reply, in
// extraResponseHeaders) are the gateway's to write: dropped, so that HTTP/1.1 and HTTP/2 answer
// alike. Before, HTTP/1.1 sent them as set (a plugin's Connection in place of the gateway's) and
// HTTP/2 answered 500, or sent a Trailer, or warned of a Connection header.

const warnings: string[] = []
const onWarning = (w: Error): void => { warnings.push(`${w.name}: ${w.message}`) }
process.on('warning', onWarning)
t.teardown(() => { process.off('warning', onWarning) })

const dir = t.testdir({})
// /e/<way>/<name>/<value>: extraResponseHeaders or a reply (no response hook on the route: the head is written at once);
// /r/response/<name>/<value>: res.headers in onResponse.
writeUserPlugin(dir, 'in-request', 100, `{
  onRequest (req) {
    const [, , way, name, value] = req.path.split('/').map(decodeURIComponent)
    if (way === 'extra') req.extraResponseHeaders[name] = value
    if (way === 'reply') return { status: 200, headers: { 'content-type': 'text/plain', [name]: value }, body: 'ok' }
  }
}`)
writeUserPlugin(dir, 'in-response', 100, `{
  onResponse (res, req) {
    const [, , , name, value] = req.path.split('/').map(decodeURIComponent)
    res.headers[name] = value
  }
}`)

const up = await startUpstream((req, res) => { req.resume(); res.end('ok') })
t.teardown(() => up.close())
const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
loadPlugins: [ ./in-request.ts, ./in-response.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: e, match: { path: /e/* }, upstream: up, plugins: { in-request: {} } }
  - { name: r, match: { path: /r/* }, upstream: up, plugins: { in-response: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())
const session = await h2Connect(gw.h2cUrl as string)
t.teardown(() => session.destroy())

const VALUE = 'plugin-value'
const paths = (name: string, value = VALUE): string[] =>
  ['/e/extra', '/e/reply', '/r/response'].map(way => `${way}/${encodeURIComponent(name)}/${value}`)

for (const name of ['keep-alive', 'upgrade', 'proxy-connection', 'connection', 'trailer', 'Keep-Alive', 'Connection', 'Trailer']) {
  const lower = name.toLowerCase()
  for (const path of paths(name)) {
    t.test(`${path}: dropped on HTTP/1.1 and HTTP/2 alike`, async t => {
      const h1 = await request(`${gw.url}${path}`)
      t.equal(h1.statusCode, 200, 'HTTP/1.1')
      t.equal(await h1.body.text(), 'ok')
      t.not(h1.headers[lower], VALUE, "HTTP/1.1 sends not the plugin's value")
      if (lower === 'connection') t.equal(h1.headers.connection, 'keep-alive', "the gateway's own")
      const h2 = await h2Request(session, { ':path': path })
      t.equal(h2.status, 200, 'HTTP/2')
      t.equal(h2.body.toString(), 'ok')
      t.equal(h2.headers[lower], undefined, 'HTTP/2 sends none')
    })
  }
}

t.test('a Connection naming close still closes an HTTP/1.1 connection after the answer; HTTP/2 ignores it', async t => {
  for (const path of paths('connection', 'close')) {
    const h1 = await request(`${gw.url}${path}`)
    t.equal(h1.statusCode, 200)
    t.equal(h1.headers.connection, 'close', path)
    await h1.body.text()
    const h2 = await h2Request(session, { ':path': path })
    t.equal(h2.status, 200, path)
    t.equal(h2.headers.connection, undefined)
  }
})

t.test('Node warned of nothing (a Connection header on an HTTP/2 response)', async t => {
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings, [])
})
