import t from 'tap'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type Socket } from 'node:net'
import { createTestCa } from './helpers/certs.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { floodBody, headerValues, rawRequest } from './helpers/raw-http.ts'
import { until } from './helpers/wait.ts'

// The server.tls.redirectHttp listener was a plain Node server: server.maxConnections, clientTimeouts.headers
// and keepAliveTimeout did not hold there (200 idle connections kept against 50; a head sent slowly kept
// ~82 s; idle ~89 s); a POST's body was read whole to be thrown away (10 GB declared: 1.4 GB in 4 s);
// HTTP/1.1 without Host got Node's bare 400, CONNECT no answer.
const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
ca.issue('server', 'DNS:api.example.com')

/** A gateway with more `server` keys (YAML lines) than listen and tls; the port of its redirect listener. */
async function redirectGateway (name: string, server: string): Promise<{ gw: TestGateway, port: number }> {
  const file = join(ca.certFile, '..', `${name}.yaml`)
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { certificates: [ { cert: server.pem, key: server.key } ], redirectHttp: { listen: { host: 127.0.0.1, port: 0 } } }
${server}
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
`)
  const gw = await startGateway(readFileSync(file, 'utf8'), { file })
  t.teardown(() => gw.close())
  return { gw, port: Number(new URL(gw.redirectUrl as string).port) }
}

/** A connection to `port` that sent `text`, and what came back until it closed. */
function open (port: number, text: string): { received: () => string, closed: Promise<unknown> } {
  const socket: Socket = connect(port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write(text)
  return { received: () => Buffer.concat(chunks).toString('latin1'), closed: once(socket, 'close') }
}

/** Whether `closed` settled within `ms` (generous: Node's own bounds were 60 s and more). */
const within = async (closed: Promise<unknown>, ms: number) => await Promise.race([closed.then(() => true), new Promise<boolean>(resolve => setTimeout(resolve, ms, false).unref())])

const GET = 'GET /a HTTP/1.1\r\nHost: api.example.com\r\n\r\n'

t.test('server.maxConnections holds on the redirect listener too', async t => {
  const { gw, port } = await redirectGateway('limited', '  maxConnections: 2')
  const kept = [open(port, GET), open(port, GET)]
  for (const k of kept) t.ok(await until(() => k.received().startsWith('HTTP/1.1 308 ')), 'answered, and kept')
  const third = open(port, GET)
  t.ok(await within(third.closed, 20_000), 'a third connection is closed')
  t.equal(third.received(), '', 'unanswered')
  t.ok(await until(() => gw.logs.some(l => l.level === 40 && l.maxConnections === 2)), 'logged')
})

t.test('clientTimeouts and keepAliveTimeout hold there; a body is not read; no Host and CONNECT get JSON', async t => {
  const { port } = await redirectGateway('timed', '  clientTimeouts: { headers: 1s }\n  keepAliveTimeout: 7s')

  const kept = open(port, GET)
  t.ok(await until(() => kept.received().includes('\r\n\r\n')))
  t.match(kept.received(), /^HTTP\/1\.1 308 [^]*\r\nKeep-Alive: timeout=7\r\n/, 'kept for keepAliveTimeout')

  const slow = open(port, 'GET / HTTP/1.1\r\nHost: api.')
  const silent = open(port, '')
  t.ok(await within(slow.closed, 20_000), 'a head sent slowly is cut')
  t.match(slow.received(), /^HTTP\/1\.1 408 /)
  t.ok(await within(silent.closed, 20_000), 'a connection that sends nothing is closed')

  // More than the socket buffers of both ends hold: a listener that stops reading never takes it all.
  const FLOOD = 64 * 1024 * 1024
  const sized = await floodBody(port, ['POST /upload HTTP/1.1', 'Host: api.example.com', 'Content-Length: 10000000000'], Buffer.alloc(0x10000, 'a'), FLOOD)
  t.match(sized.answer, /^HTTP\/1\.1 308 [^]*\r\nconnection: close\r\n/i, 'a body: the answer says close')
  t.ok(sized.ended && sized.sent < FLOOD, `the connection ended, the body not read on (${sized.sent} bytes sent)`)
  const chunked = await floodBody(port, ['POST /upload HTTP/1.1', 'Host: api.example.com', 'Transfer-Encoding: chunked'], Buffer.from(`10000\r\n${'a'.repeat(0x10000)}\r\n`), FLOOD)
  t.match(chunked.answer, /^HTTP\/1\.1 308 [^]*\r\nconnection: close\r\n/i, 'chunked too')
  t.ok(chunked.ended && chunked.sent < FLOOD, `ended (${chunked.sent} bytes sent)`)

  const expecting = await rawRequest(port, ['POST /upload HTTP/1.1', 'Host: api.example.com', 'Content-Length: 5', 'Expect: 100-continue'])
  t.match(expecting.head, /^HTTP\/1\.1 308 [^]*\r\nconnection: close$/i, 'no 100 Continue invites the body')

  const noHost = await rawRequest(port, ['GET / HTTP/1.1', 'Connection: close'])
  t.equal(noHost.status, 400)
  t.match(JSON.parse(noHost.body), { error: 'bad_host' }, 'HTTP/1.1 without Host')
  const tunnel = await rawRequest(port, ['CONNECT api.example.com:443 HTTP/1.1', 'Host: api.example.com:443'])
  t.equal(tunnel.status, 501)
  t.match(JSON.parse(tunnel.body), { error: 'not_implemented' }, 'CONNECT')
  t.equal(headerValues(tunnel, 'x-request-id').length, 1)
})
