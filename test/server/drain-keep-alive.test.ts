import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import { startUpstream } from '../helpers/upstream.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { createTestCa, type TestCa } from '../helpers/certs.ts'
import { handshake } from '../helpers/tls-gateway.ts'
import { until } from '../helpers/wait.ts'
import { readThenAgain, type RawResponse } from '../helpers/raw-http.ts'

const GET = (path: string) => `GET ${path} HTTP/1.1\r\nHost: gateway.test\r\n\r\n`

/**
 * A gateway (shutdownTimeout 20s: a stop held to it is told from one that was not, however loaded the
 * machine) in front of `handler`, on a plain, TLS, or TLS and HTTP/2 listener.
 */
async function drainingGateway (t: Test, handler: (req: IncomingMessage, res: ServerResponse) => void, listener: { ca: TestCa, http2: boolean } | undefined = undefined): Promise<TestGateway> {
  const up = await startUpstream(handler)
  t.teardown(() => up.close())
  let server = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 20s'
  if (listener !== undefined) {
    const leaf = listener.ca.issue('gateway', 'DNS:api.example.com')
    server += `\n  tls: { certificates: [ { cert: "${leaf.certFile}", key: "${leaf.keyFile}" } ] }${listener.http2 ? '\n  http2: true' : ''}`
  }
  // Bodies stream (none is read whole first): the upstream sees a request once its head is
  // complete, and the client a response once its head is in.
  const gw = await startGateway(`${server}
upstreams:
  up: { targets: [ { url: "${up.url}" } ], requestBuffer: 0, responseBuffer: 0 }
routes:
  - name: all
    match: { path: /* }
    upstream: up
`)
  t.teardown(() => gw.close())
  return gw
}

async function plainSocket (gw: TestGateway): Promise<Socket> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  await once(socket, 'connect')
  return socket
}

/** Asserts that `first` tells the client to close, and that the gateway did close after it. */
function saidClose (t: Test, { first, second }: { first: RawResponse, second: RawResponse | 'closed' }, status: number, what: string): void {
  t.match(first.head, new RegExp(`^HTTP/1\\.1 ${status} [^]*\\r\\nconnection: close$`, 'im'), `${what}: Connection: close`)
  t.notMatch(first.head, /^keep-alive:/im, `${what}: no Keep-Alive timeout`)
  t.equal(second, 'closed', `${what}: the next request on that connection met a closed connection (made anew elsewhere), not a 503`)
}

t.test('a response whose head is written during the drain says Connection: close, and the connection closes after it', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  for (const listener of [undefined, { ca, http2: false }, { ca, http2: true }]) {
    const what = listener === undefined ? 'HTTP' : listener.http2 ? 'HTTP/1.1 on an HTTP/2 listener' : 'HTTPS'
    let received = 0
    const gw = await drainingGateway(t, (req, res) => { received++; setTimeout(() => res.end(`done ${req.url}`), 1_000) }, listener)
    const socket = listener === undefined ? await plainSocket(gw) : (await handshake(gw, ca, 'api.example.com', { ALPNProtocols: ['http/1.1'] })).socket
    const exchange = readThenAgain(socket, GET('/again'))
    socket.write(GET('/api/x'))
    await until(() => received === 1)
    const started = performance.now()
    const closed = gw.close()
    const result = await exchange
    t.equal(result.first.body, 'done /api/x', `${what}: the request under way finished`)
    saidClose(t, result, 200, what)
    await closed
    t.ok(performance.now() - started < 10_000, `${what}: the stop did not wait for the deadline`)
    t.equal(received, 1, `${what}: the next request never reached the upstream`)
  }
})

t.test('so do the gateway\'s own answers, streamed responses and slowly uploaded requests', async t => {
  // The upstream answers /fail by dropping the connection (the gateway's 502), /stream with its
  // head after a second and its body a little later, and anything else by echoing what it read.
  const received: string[] = []
  const upstream = (req: IncomingMessage, res: ServerResponse): void => {
    received.push(req.url ?? '')
    if (req.url === '/fail') { setTimeout(() => res.socket?.destroy(), 1_000); return }
    if (req.url === '/stream') {
      setTimeout(() => { res.writeHead(200, { 'content-length': 8 }); res.write('stre') }, 1_000)
      setTimeout(() => res.end('amed'), 1_200)
      return
    }
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() }).on('end', () => res.end(`got ${body}`))
  }
  const cases = [
    { path: '/fail', status: 502, body: undefined },
    { path: '/stream', status: 200, body: 'streamed' },
    { path: '/upload', status: 200, body: 'got hello' }
  ]
  for (const { path, status, body } of cases) {
    const gw = await drainingGateway(t, upstream)
    const socket = await plainSocket(gw)
    const exchange = readThenAgain(socket, GET('/again'))
    const upload = path === '/upload'
    // The upload: its head and part of its body before the stop, the rest during the drain.
    socket.write(upload ? `POST ${path} HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 5\r\n\r\nhe` : GET(path))
    await until(() => received.includes(path))
    const closed = gw.close()
    if (upload) setTimeout(() => socket.write('llo'), 500)
    const result = await exchange
    saidClose(t, result, status, path)
    if (body !== undefined) t.equal(result.first.body, body, `${path}: the whole answer`)
    await closed
    t.notOk(received.includes('/again'), `${path}: the next request never reached the upstream`)
  }
})

t.test('at a stop, a connection with no request under way closes at once (part of a head sent, or idle between two), one whose head is complete is drained', async t => {
  const received: string[] = []
  const gw = await drainingGateway(t, (req, res) => {
    received.push(req.url ?? '')
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() }).on('end', () => res.end(`got ${body}`))
  })
  const partial = await plainSocket(gw)
  partial.write('GET /api/x HTTP/1.1\r\nHost: x\r\n')
  const idle = await plainSocket(gw)
  idle.write(GET('/first'))
  await once(idle, 'data')
  const uploading = await plainSocket(gw)
  uploading.write('POST /upload HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 5\r\n\r\nhe')
  let answer = ''
  uploading.on('data', (c: Buffer) => { answer += c.toString() })
  const closedSockets = new Set<Socket>()
  for (const s of [partial, idle, uploading]) s.on('error', () => {}).on('close', () => closedSockets.add(s))
  await until(() => received.includes('/upload'))

  const started = performance.now()
  const closed = gw.close()
  t.ok(await until(() => closedSockets.has(partial), 10_000), 'the connection with part of a head was closed at once, not held to the deadline')
  t.ok(await until(() => closedSockets.has(idle), 10_000), 'so was the idle one')
  t.notOk(closedSockets.has(uploading), 'the one with its body under way is left to finish')
  uploading.write('llo')
  await once(uploading, 'close')
  t.match(answer, /^HTTP\/1\.1 200 [^]*\r\n\r\ngot hello$/, 'and it did')
  await closed
  t.ok(performance.now() - started < 10_000, 'the stop did not wait for the deadline')
  t.notOk(received.includes('/api/x'), 'the unfinished head never became a request')
})
