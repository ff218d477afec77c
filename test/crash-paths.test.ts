import t, { type Test } from 'tap'
import { connect as netConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { once } from 'node:events'
import type { Duplex } from 'node:stream'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { catchAllYaml } from './helpers/catch-all.ts'
import { createTestCa } from './helpers/certs.ts'
import { waitForLog } from './helpers/logs.ts'
import { writePattern } from './helpers/streams.ts'
import { until } from './helpers/wait.ts'

// A request body the gateway streams upstream is the client's request itself, handed to undici;
// undici, once done with it (sent, or the try aborted), sets its `socket` to null. Code that later
// read req.socket (to answer an error, to cut a slow reader) threw in a timer or an event handler,
// ending the process. Each case over HTTP/1.1 and over TLS: the gateway answers, then serves on.

const ca = createTestCa('Portcullis Crash Test CA', fn => t.teardown(fn))
const leaf = ca.issue('gateway', 'IP:127.0.0.1')

/** The gateway, and `headSeen`: resolved once the upstream has a request's head, its body still to come. */
interface Rig { gw: TestGateway, headSeen: Promise<void> }

/** A gateway (TLS or not) in front of `answer` for POSTs; GET /next is answered "next". `upstream`: more keys of the upstream. */
async function rig (t: Test, tls: boolean, answer: (req: IncomingMessage, res: ServerResponse) => void,
  options: { route?: string, server?: string, upstream?: string } = {}): Promise<Rig> {
  let seen: () => void = () => {}
  const headSeen = new Promise<void>(resolve => { seen = resolve })
  const up = await startUpstream((req, res) => {
    if (req.url === '/next') { res.end('next'); return }
    seen()
    answer(req, res)
  })
  t.teardown(() => up.close())
  const certificates = tls ? `  tls: { certificates: [ { cert: "${leaf.certFile}", key: "${leaf.keyFile}" } ] }\n` : ''
  const server = `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${options.server ?? ''}${certificates}`
  const yaml = catchAllYaml(up.url, { server, route: options.route })
  const gw = await startGateway(options.upstream === undefined ? yaml : yaml.replace(`"${up.url}" } ] }`, `"${up.url}" } ], ${options.upstream} }`))
  t.teardown(() => gw.close())
  return { gw, headSeen }
}

async function open (gw: TestGateway, tls: boolean): Promise<Duplex> {
  const port = Number(new URL(gw.url).port)
  const socket = tls ? tlsConnect({ host: '127.0.0.1', port, ca: ca.cert }) : netConnect(port, '127.0.0.1')
  socket.on('error', () => {})
  await once(socket, tls ? 'secureConnect' : 'connect')
  return socket
}

/** The status of the first response on `socket` (0 if it closes without one). */
function firstStatus (socket: Duplex): Promise<number> {
  return new Promise(resolve => {
    let text = ''
    const read = (c: Buffer): void => {
      text += c.toString('latin1')
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)
      if (status !== null) { socket.off('data', read); resolve(Number(status[1])) }
    }
    socket.on('data', read)
    socket.on('close', () => resolve(0))
  })
}

/** Whether the gateway ends the connection within `maxMs` (a generous bound: Node's keep-alive timeout is 72 s). */
function ends (socket: Duplex, maxMs = 10_000): Promise<boolean> {
  return new Promise(resolve => {
    if (socket.destroyed) { resolve(true); return } // closed already
    const timer = setTimeout(() => resolve(false), maxMs)
    socket.once('close', () => { clearTimeout(timer); resolve(true) })
  })
}

/** The gateway is still up: a new connection is served. */
async function servesNext (t: Test, gw: TestGateway, tls: boolean): Promise<void> {
  const socket = await open(gw, tls)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write('GET /next HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
  await once(socket, 'close')
  t.match(Buffer.concat(chunks).toString('latin1'), /^HTTP\/1\.1 200 [^]*\r\n\r\nnext$/, 'the gateway serves the next request')
}

const CHUNKED = 'POST /up HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n'
const LENGTH = 'POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n'

for (const tls of [false, true]) {
  const over = tls ? 'TLS' : 'HTTP/1.1'

  t.test(`${over}: a malformed chunk while the body streams upstream: 400, the connection closed`, async t => {
    const { gw, headSeen } = await rig(t, tls, req => req.resume())
    const socket = await open(gw, tls)
    const status = firstStatus(socket)
    socket.write(CHUNKED)
    await headSeen
    socket.write('zz\r\n')
    t.equal(await status, 400)
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/up' }), { status: 400, error: 'bad_request' })
    t.ok(await ends(socket), 'the connection is closed')
    await servesNext(t, gw, tls)
  })

  for (const [framing, head] of [['chunked', CHUNKED], ['content-length', LENGTH + 'x'.repeat(100_000)]]) {
    t.test(`${over}: the route's request timeout while a ${framing} body streams upstream: 408`, async t => {
      const { gw, headSeen } = await rig(t, tls, req => req.resume(), { route: '    timeouts: { request: 1s }' })
      const socket = await open(gw, tls)
      const status = firstStatus(socket)
      socket.write(head)
      await headSeen
      t.equal(await status, 408)
      t.match(await waitForLog(gw.logs, { msg: 'request', path: '/up' }), { status: 408, error: 'client_body_timeout' })
      t.ok(await ends(socket), 'the connection is closed: the rest of the body is never read')
      await servesNext(t, gw, tls)
    })
  }

  t.test(`${over}: the route's request timeout while a body with a short rest streams upstream: 408, the connection closed`, async t => {
    const { gw, headSeen } = await rig(t, tls, req => req.resume(), { route: '    timeouts: { request: 1s }', server: '  keepAliveTimeout: 1s\n' })
    const socket = await open(gw, tls)
    const status = firstStatus(socket)
    socket.write('POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(50_000))
    await headSeen
    t.equal(await status, 408)
    // Not kept for the rest of 64 KiB at most to be discarded: the client stalled, the rest may never come.
    t.ok(await ends(socket), 'the connection is closed')
    await servesNext(t, gw, tls)
  })

  t.test(`${over}: an upstream body that does not decode, answered while the client still uploads: 502`, async t => {
    const { gw, headSeen } = await rig(t, tls, (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip' }).end('not gzip at all')
    }, { route: '    plugins: { compress: {} }' })
    const socket = await open(gw, tls)
    const status = firstStatus(socket)
    socket.write(CHUNKED)
    await headSeen
    t.equal(await status, 502)
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/up' }), { status: 502, error: undefined })
    t.ok(await ends(socket), 'the connection is closed: the rest of the body, sent to undici, is not seen to be counted')
    await servesNext(t, gw, tls)
  })

  t.test(`${over}: a client that stops reading the answer to its streamed upload is cut (clientTimeouts.send)`, async t => {
    const { gw, headSeen } = await rig(t, tls, (req, res) => {
      req.resume()
      req.on('end', () => { void writePattern(res, 32 * 1024 * 1024, { written: 0, waitingForDrain: false, finished: false }) })
    }, { server: '  clientTimeouts: { send: 1s }\n' })
    const socket = await open(gw, tls)
    socket.write('POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(50_000))
    await headSeen
    socket.write('x'.repeat(50_000))
    socket.pause() // never reads
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/up' }, 15_000), { status: 200, error: 'client_send_timeout' })
    socket.destroy()
    await servesNext(t, gw, tls)
  })

  t.test(`${over}: a streamed body's end, after undici dropped the body (the upstream answered it whole first), while the answer is still sent`, async t => {
    const BIG = 32 * 1024 * 1024
    let dropped: () => void = () => {}
    const bodyDropped = new Promise<void>(resolve => { dropped = resolve })
    const { gw, headSeen } = await rig(t, tls, (req, res) => {
      // undici ends the connection of an answer complete while it still sends the body, and the body with it.
      req.socket.once('close', () => dropped())
      res.end(Buffer.alloc(BIG, 'x'))
    }, { upstream: 'responseBuffer: 64MiB' })
    const socket = await open(gw, tls)
    socket.pause() // reads nothing yet: the answer is far from sent
    socket.write(CHUNKED)
    await headSeen
    await bodyDropped
    socket.write('0\r\n\r\n')
    let received = 0
    socket.on('data', (c: Buffer) => { received += c.length })
    const status = firstStatus(socket)
    socket.resume()
    t.equal(await status, 200)
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/up' }, 15_000), { status: 200, error: undefined })
    t.ok(await until(() => received > BIG, 15_000), 'the answer is sent whole')
    socket.destroy()
    await servesNext(t, gw, tls)
  })
}
