import t from 'tap'
import { constants } from 'node:http2'
import { startUpstream } from '../helpers/upstream.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'
import { waitForLog } from '../helpers/logs.ts'
import { until } from '../helpers/wait.ts'

// Its own file: Node warns of a Connection header on an HTTP/2 response once per process.
t.test('a body refused over HTTP/2 (413) is answered on its stream without a Connection header, and Node has nothing to warn of', async t => {
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`)
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: s, match: { path: /s/* }, upstream: up, plugins: { request-size: { maxBody: 1KiB } } }
`)
  const session = await connect({ h2c: true })
  const refused = await h2Request(session, { ':method': 'POST', ':path': '/s/x' }, Buffer.alloc(2000, 'x'))
  t.equal(refused.status, 413)
  t.match(refused.body.toString(), /body_too_large/)
  t.equal(refused.headers.connection, undefined)
  const after = await h2Request(session, { ':path': '/s/y' })
  t.equal(after.status, 200, 'the session serves on')
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings.filter(w => /connection header/i.test(w)), [], 'no warning about a Connection header')
})

t.test('a chunked upload refused mid-body over HTTP/2 (413) closes its stream once answered: logged, counted, out of flight, the session serves on', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: s, match: { path: /s/* }, upstream: up, plugins: { request-size: { maxBody: 100kb } } }
`, { server: '  clientTimeouts: { body: 10s }\n' })
  const session = await connect({ h2c: true })
  // No Content-Length: refused once 100 kB have come, with most of the 3 MiB still unsent.
  const stream = session.request({ ':method': 'POST', ':path': '/s/big' }, { endStream: false }).on('error', () => {})
  stream.end(Buffer.alloc(3 * 1024 * 1024, 'x'))
  const status = await new Promise(resolve => stream.once('response', h => resolve(h[':status'])))
  t.equal(status, 413)
  stream.resume()
  t.ok(await until(() => stream.closed), 'the stream is closed')
  t.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR, 'RST_STREAM NO_ERROR: the answer was whole')
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'the exchange finished')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/s/big' }), { status: 413 }, 'logged')
  const after = await h2Request(session, { ':path': '/s/y' })
  t.equal(after.status, 200, 'the session serves on')
})
