import t, { type Test } from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import type { ClientHttp2Session } from 'node:http2'
import { echo, startUpstream } from './helpers/upstream.ts'
import { catchAllGateway } from './helpers/catch-all.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { h2Connect, startH2Gateway } from './helpers/http2.ts'

type Echoed = { method: string, headers: Record<string, string | undefined>, body: string }

// curl sends `Expect: 100-continue` with every body over 1 KiB, then waits for the 100 before sending it.
t.test('Expect: 100-continue: the client gets its 100, then the response; the upstream never sees Expect', async t => {
  const gw = await catchAllGateway(t, echo)
  const body = 'b'.repeat(2_000)
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.write(['POST /upload HTTP/1.1', 'Host: gateway.test', 'Content-Type: text/plain', `Content-Length: ${body.length}`,
    'Expect: 100-continue', 'Connection: close', '', ''].join('\r\n'))
  while (!received.includes('\r\n\r\n')) await once(socket, 'data')
  t.equal(received, 'HTTP/1.1 100 Continue\r\n\r\n', 'the interim answer, before any of the body was sent')
  socket.write(body)
  await once(socket, 'end')
  const final = received.slice('HTTP/1.1 100 Continue\r\n\r\n'.length)
  t.match(final, /^HTTP\/1\.1 200 OK\r\n/, 'then the upstream\'s answer')
  const seen = JSON.parse(final.slice(final.indexOf('\r\n\r\n') + 4)) as Echoed
  t.equal(seen.method, 'POST')
  t.equal(seen.headers.expect, undefined, 'Expect is for this hop: not forwarded')
  t.equal(seen.headers['content-length'], '2000')
  t.equal(seen.body, body, 'the whole body reached the upstream')
})

t.test('Expect: 100-continue on a request without a body: answered, and the connection kept for the request pipelined behind', async t => {
  const gw = await catchAllGateway(t, echo)
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.write(['GET /a HTTP/1.1', 'Host: gateway.test', 'Expect: 100-continue', '',
    'POST /b HTTP/1.1', 'Host: gateway.test', 'Content-Length: 0', 'Expect: 100-continue', '',
    'GET /c HTTP/1.1', 'Host: gateway.test', 'Connection: close', '', ''].join('\r\n'))
  await once(socket, 'end')
  // A head follows the body before it on the same line (bodies end without a line break).
  const statuses = received.match(/HTTP\/1\.1 \d{3}/g) ?? []
  t.same(statuses, ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200'], `three answers, no 100 (${received.slice(0, 300)})`)
  t.same([...received.matchAll(/"url":"([^"]+)"/g)].map(m => m[1]), ['/a', '/b', '/c'], 'each reached the upstream')
})

const KEY = 's3cret-key-0123456789'

/** Routes that refuse before reading the body: /keyed needs a key (key-auth), /small takes 1 KiB at most (request-size). */
async function guardedYaml (t: Test): Promise<string> {
  const up = await startUpstream(echo)
  t.teardown(() => up.close())
  return `
consumers:
  - id: ops
    credentials: { key-auth: { keys: [ "${KEY}" ] } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: keyed
    match: { path: /keyed/* }
    upstream: up
    plugins: { key-auth: {} }
  - name: small
    match: { path: /small/* }
    upstream: up
    plugins: { request-size: { maxBody: 1KiB } }
`
}

async function guardedGateway (t: Test, server = ''): Promise<TestGateway> {
  const gw = await startGateway(server + await guardedYaml(t))
  t.teardown(() => gw.close())
  return gw
}

/** Sends a request head with `Expect: 100-continue` and reads until the server closes; the body is sent only after a 100. */
async function expectContinue (port: number, head: string[], body: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  let sent = false
  socket.on('data', (c: Buffer) => {
    received += c.toString('latin1')
    if (!sent && received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) { sent = true; socket.write(body) }
  })
  socket.write([...head, 'Expect: 100-continue', '', ''].join('\r\n'))
  await once(socket, 'close')
  return received
}

t.test('Expect: 100-continue: a request a plugin refuses gets its final status without a 100, and the connection closes', async t => {
  const gw = await guardedGateway(t)
  const port = Number(new URL(gw.url).port)
  const unauthenticated = await expectContinue(port, ['POST /keyed/x HTTP/1.1', 'Host: a', 'Content-Length: 2000'], 'b'.repeat(2_000))
  t.match(unauthenticated, /^HTTP\/1\.1 401 /, 'no key: 401 at once, no 100')
  t.match(unauthenticated, /\r\nconnection: close\r\n/i, 'the body it did not send is not awaited')
  const tooLarge = await expectContinue(port, ['POST /small/x HTTP/1.1', 'Host: a', 'Content-Length: 5000'], 'b'.repeat(5_000))
  t.match(tooLarge, /^HTTP\/1\.1 413 /, 'over maxBody: 413 at once, no 100')

  // Let through: the 100, then the body, forwarded whole (read whole first, or streamed as it comes).
  for (const [framing, body] of [['Content-Length: 200', 'c'.repeat(200)], ['Transfer-Encoding: chunked', '5\r\nhello\r\n0\r\n\r\n']] as const) {
    const ok = await expectContinue(port, ['POST /keyed/x HTTP/1.1', 'Host: a', `x-api-key: ${KEY}`, framing, 'Connection: close'], body)
    t.match(ok, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/, `${framing}: 100, then the answer`)
    t.equal((JSON.parse(ok.slice(ok.indexOf('{'))) as Echoed).body, framing.startsWith('Content') ? body : 'hello', `${framing}: the body reached the upstream`)
  }
})

/** An HTTP/2 request with `Expect: 100-continue` whose body is sent only on the server's 100 ('continue'). */
async function h2ExpectContinue (session: ClientHttp2Session, path: string, headers: Record<string, string>, body: string): Promise<{ continued: boolean, status: number, body: string }> {
  const stream = session.request({ ':method': 'POST', ':path': path, expect: '100-continue', ...headers }, { endStream: false })
  let continued = false
  stream.on('continue', () => { continued = true; stream.end(body) })
  let status = 0
  stream.on('response', h => { status = Number(h[':status']) })
  const chunks: Buffer[] = []
  stream.on('data', (c: Buffer) => chunks.push(c))
  stream.on('error', () => {})
  await once(stream, 'close')
  return { continued, status, body: Buffer.concat(chunks).toString() }
}

/** The same over an HTTP/2 session. */
async function refusedWithoutContinue (t: Test, session: ClientHttp2Session): Promise<void> {
  t.match(await h2ExpectContinue(session, '/keyed/x', {}, 'nope'), { continued: false, status: 401 }, 'no key: 401, no 100')
  t.match(await h2ExpectContinue(session, '/small/x', { 'content-length': '5000' }, 'b'.repeat(5_000)), { continued: false, status: 413 }, 'over maxBody: 413, no 100')
  const ok = await h2ExpectContinue(session, '/keyed/x', { 'x-api-key': KEY }, 'over h2')
  t.match(ok, { continued: true, status: 200 })
  t.equal((JSON.parse(ok.body) as Echoed).body, 'over h2')
}

t.test('Expect: 100-continue over HTTP/2 (h2c, and TLS): the 100 only once the body is wanted', async t => {
  const gw = await guardedGateway(t, 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }\n')
  const session = await h2Connect(gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  await refusedWithoutContinue(t, session)
  const tls = await startH2Gateway(t, 'true', await guardedYaml(t))
  await refusedWithoutContinue(t, await tls.connect())
})
