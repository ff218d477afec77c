import t, { type Test } from 'tap'
import { request } from 'undici'
import type { Exchange } from '../../src/proxy/exchange.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { h2Connect, h2Request } from '../helpers/http2.ts'
import { headerValues, rawRequest } from '../helpers/raw-http.ts'
import { until } from '../helpers/wait.ts'

// An upload without length waits for the upstream's only connection; the slot frees inside
// undici's onComplete, before undici can take the body, so its size limit fails the body while
// nobody but the gateway listens to it. That error was uncaught: the process died. Now the
// upload is refused (413) and the gateway serves on.

interface Rig { gw: TestGateway, release: () => void, held: Promise<unknown> }

async function rig (t: Test): Promise<Rig> {
  let release = (): void => {}
  let seen = (): void => {}
  const holding = new Promise<void>(resolve => { seen = resolve })
  const up = await startUpstream((req, res) => {
    req.resume()
    if (req.url === '/slow/hold') { release = () => res.end('held'); seen(); return }
    req.on('end', () => res.end('ok'))
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
upstreams:
  slow: { connections: 1, targets: [ { url: "${up.url}" } ] }
routes:
  - { name: s, match: { path: /s/* }, upstream: slow, plugins: { request-size: { maxBody: 1KiB } } }
  - { name: slow, match: { path: /slow/* }, upstream: slow }
`)
  t.teardown(() => gw.close())
  const held = request(`${gw.url}/slow/hold`).then(async r => await r.body.text())
  await holding
  return { gw, release: () => release(), held }
}

/**
 * Once the upload waits for the slot, the slot frees. Over HTTP/1.1, with more than the limit of its
 * body read in already; HTTP/2 reads none of a stream's DATA before the stream is read.
 */
async function freeSlotWhenQueued (t: Test, { gw, release, held }: Rig, bodyIn: number): Promise<void> {
  const target = gw.gateway.runtime.upstreams.get('slow')!.targets[0]!
  const waiting = (): Exchange | undefined => target.waiting.first as Exchange | undefined
  t.ok(await until(() => (waiting()?.requestBytes ?? -1) >= bodyIn, 10_000), 'the upload waits for the slot')
  release()
  t.equal(await held, 'held')
}

const BODY = 'x'.repeat(100_000)

t.test('HTTP/1.1 chunked: 413, and the gateway serves on', async t => {
  const r = await rig(t)
  const port = Number(new URL(r.gw.url).port)
  const refused = rawRequest(port, ['POST /s/upload HTTP/1.1', 'Host: x', 'Transfer-Encoding: chunked'], `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`)
  await freeSlotWhenQueued(t, r, 1025)
  const res = await refused
  t.equal(res.status, 413)
  t.match(res.body, /body_too_large/)
  t.same(headerValues(res, 'connection'), ['close'], 'as any body refused unread: the connection closes')
  const next = await request(`${r.gw.url}/slow/next`)
  t.equal(next.statusCode, 200, 'a new request is served')
  t.equal(await next.body.text(), 'ok')
})

t.test('HTTP/2 (h2c) DATA frames: 413, and the session serves on', async t => {
  const r = await rig(t)
  const session = await h2Connect(r.gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  const refused = h2Request(session, { ':method': 'POST', ':path': '/s/upload' }, BODY)
  await freeSlotWhenQueued(t, r, 0)
  const res = await refused
  t.equal(res.status, 413)
  t.match(res.body.toString(), /body_too_large/)
  const next = await h2Request(session, { ':path': '/slow/next' })
  t.equal(next.status, 200, 'the session serves on')
  t.equal(next.body.toString(), 'ok')
})
