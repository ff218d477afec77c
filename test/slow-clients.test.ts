import t, { type Test } from 'tap'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { connect, constants } from 'node:http2'
import { once } from 'node:events'
import { Transform } from 'node:stream'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import { Agent, request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { until } from './helpers/wait.ts'
import { waitForLog } from './helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'
import { h2Request, startH2Gateway } from './helpers/http2.ts'
import { catchAllYaml } from './helpers/catch-all.ts'

// Issue 15, items 2 to 4: slow clients are cut off by server.clientTimeouts, freeing the upstream
// connection they held; a normal client keeps being served by the same upstream meanwhile.

const CHUNK = Buffer.alloc(64 * 1024, 'x')
/** 4 MiB for /medium; /big streams 256 MiB, more than loopback socket buffers can hide. */
const MEDIUM = 4 * 1024 * 1024

function stream (res: ServerResponse, bytes: number): void {
  let left = bytes
  const more = () => {
    while (left > 0) { left -= CHUNK.length; if (!res.write(CHUNK)) { res.once('drain', more); return } }
    res.end()
  }
  more()
}

async function gateway (t: Test, server: string, upstreamKeys = '    connections: 1'): Promise<{ gw: TestGateway, seen: { bodies: number, aborted: number } }> {
  const seen = { bodies: 0, aborted: 0 }
  const up = await startUpstream((req, res) => {
    res.on('close', () => { if (!res.writableFinished) seen.aborted++ })
    if (req.url === '/big') { stream(res, 256 * MEDIUM); return }
    if (req.url === '/medium') { stream(res, MEDIUM); return }
    req.resume()
    // /slow answers 800 ms after the body has arrived: longer than the body timeouts of the tests.
    req.on('end', () => { if (req.method === 'POST') seen.bodies++; if (req.url === '/slow') setTimeout(() => res.end('ok'), 800); else res.end('ok') })
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
${server}
upstreams:
  up:
    targets: [ { url: "${up.url}" } ]
${upstreamKeys}
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  return { gw, seen }
}

const port = (gw: TestGateway) => Number(new URL(gw.url).port)
const idle = (gw: TestGateway) => {
  const s = gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]
  return s !== undefined && s.connections.busy === 0 && s.inFlight === 0 && s.queued === 0
}
/** Client connections the gateway holds open (sockets it has not destroyed). */
const connections = (gw: TestGateway) => (gw.gateway.app.server as unknown as { _connections: number })._connections
const get = async (url: string) => { const res = await request(url); return { status: res.statusCode, body: await res.body.text() } }

function rawSocket (gw: TestGateway): Promise<Socket> {
  const socket = netConnect(port(gw), '127.0.0.1')
  socket.on('error', () => {})
  return once(socket, 'connect').then(() => socket)
}

/** GET /big on a raw socket paused from the start (resume it to read); bytes received so far. */
async function pausedDownload (gw: TestGateway): Promise<{ socket: Socket, received: () => number }> {
  const socket = await rawSocket(gw)
  let received = 0
  socket.on('data', (c: Buffer) => { received += c.length })
  socket.pause()
  socket.write('GET /big HTTP/1.1\r\nhost: x\r\n\r\n')
  return { socket, received: () => received }
}

t.test('a body that stalls is cut off after clientTimeouts.body, and its upstream connection freed', async t => {
  const { gw, seen } = await gateway(t, '  clientTimeouts: { body: 300ms }')
  const socket = await rawSocket(gw)
  // Larger than the retry buffer: streamed to the upstream, holding its only connection.
  socket.write('POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n' + 'a'.repeat(1000))
  const started = performance.now()
  await once(socket, 'close')
  const took = performance.now() - started
  t.ok(took >= 250 && took < 10_000, `closed after ${Math.round(took)} ms`)
  t.ok(await until(() => seen.aborted === 1), 'the upstream try was aborted')
  t.same(await get(`${gw.url}/normal`), { status: 200, body: 'ok' }, 'a normal client is served by the same upstream')
  t.ok(await until(() => idle(gw)), 'every connection free')
  const line = gw.logs.find(l => l.msg === 'request' && l.path === '/upload')
  t.match(line, { status: 408, error: 'client_body_timeout' })
  t.ok(gw.logs.some(l => l.msg === 'client too slow: connection closed' && l.error === 'client_body_timeout'), 'logged with its code')
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_body_timeout"\} 1/)
})

t.test('a body still arriving after the answer: the connection closes at the keep-alive timeout, whether the body stalls or ends', async t => {
  // Once answered, the socket's timer is Node's keep-alive timeout.
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 300ms }
  keepAliveTimeout: 1s
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { name: gone, match: { path: /* }, upstream: up, plugins: { request-termination: { status: 410 } } }
`)
  t.teardown(() => gw.close())
  for (const rest of ['', 'a'.repeat(999_000)]) {
    const socket = await rawSocket(gw)
    let received = ''
    let closed = false
    socket.on('data', (c: Buffer) => { received += c.toString() })
    socket.on('close', () => { closed = true })
    socket.write('POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n' + 'a'.repeat(1000))
    t.ok(await until(() => received.startsWith('HTTP/1.1 410')), 'answered before the body came')
    if (rest !== '') socket.write(rest)
    t.ok(await until(() => closed), rest === '' ? 'a stalled body: closed' : 'a body that ended: closed')
  }
})

t.test('a body that keeps arriving, however slowly, is not cut off', async t => {
  // Pauses of 150 ms against 1 s: a margin that holds on a loaded machine.
  const { gw, seen } = await gateway(t, '  clientTimeouts: { body: 1s }')
  const socket = await rawSocket(gw)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.write('POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 5\r\n\r\n')
  for (let i = 0; i < 5; i++) { await new Promise(resolve => setTimeout(resolve, 150)); socket.write('a') }
  await once(socket, 'close')
  t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 /)
  t.equal(seen.bodies, 1)
})

/** Sends `bytes` of a POST body in pieces of `piece` bytes every 100 ms until the socket closes. */
async function trickle (socket: Socket, bytes: number, piece: number): Promise<void> {
  socket.write(`POST /upload HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: ${bytes}\r\n\r\n`)
  for (let sent = 0; sent < bytes && !socket.destroyed; sent += piece) {
    socket.write('a'.repeat(Math.min(piece, bytes - sent)))
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

t.test('clientTimeouts.body ends with the body: a request sent whole is not cut off while the upstream takes its time', async t => {
  const { gw, seen } = await gateway(t, '  clientTimeouts: { body: 300ms }')
  const res = await request(`${gw.url}/slow`, { method: 'POST', body: 'x'.repeat(1000) })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'ok')
  // Nor is a request without a body: there is no body to time.
  for (const [method, body] of [['GET', undefined], ['POST', '']] as const) {
    const none = await request(`${gw.url}/slow`, { method, body })
    t.same([none.statusCode, await none.body.text()], [200, 'ok'], `${method} with ${body === undefined ? 'no body' : 'Content-Length: 0'}`)
  }
  t.equal(seen.aborted, 0)
})

t.test('clientTimeouts.body ends with the body: a body sent whole is not cut off while a plugin holds the request', async t => {
  // A request hook that holds each request until the test lets it go.
  const holds = sharedWithPlugins<Array<() => void>>('requestHolds', [])
  const dir = t.testdir({})
  writeUserPlugin(dir, 'hold', 500, "{ onRequest: () => new Promise<void>(resolve => { shared('requestHolds').push(resolve) }) }")
  const up = await startUpstream((req, res) => { req.resume(); req.on('end', () => res.end('ok')) })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 200ms }
loadPlugins: [ ./hold.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: { hold: {} } }
`, { file: join(dir, 'gw.yaml') })
  t.teardown(() => gw.close())
  const res = request(`${gw.url}/held`, { method: 'POST', body: 'small' })
  t.ok(await until(() => holds.length === 1), 'the plugin holds the request')
  // Past the body timeout (200 ms), the body whole in the gateway but not read yet: asserts that nothing cuts the request meanwhile.
  await new Promise(resolve => setTimeout(resolve, 500))
  ;(holds[0] as () => void)()
  const answer = await res
  t.equal(answer.statusCode, 200)
  t.equal(await answer.body.text(), 'ok')
})

t.test('clientTimeouts.body and minBodyRate run only while the gateway reads the body: not while it queues, a plugin holds it, or a plugin stream holds it back', async t => {
  sharedWithPlugins('Transform', Transform)
  const dir = t.testdir({})
  // Holds /held requests 700 ms before the body is wanted; /piped bodies go through a stream taking 400 ms a chunk.
  writeUserPlugin(dir, 'slow', 1200, `{ onRequest: async (req) => {
    if (req.path === '/held') await new Promise(resolve => setTimeout(resolve, 700))
    if (req.path === '/piped') req.pipeBodyThrough(new (shared('Transform'))({ highWaterMark: 1024, transform (c: Buffer, _e: string, cb: (e: null, c: Buffer) => void) { setTimeout(() => cb(null, c), 400) } }))
  } }`)
  let bodies = 0
  const up = await startUpstream((req, res) => {
    req.resume()
    req.on('end', () => { if (req.method === 'POST') bodies++; if (req.url === '/slow') setTimeout(() => res.end('ok'), 800); else res.end('ok') })
  })
  t.teardown(() => up.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 300ms, minBodyRate: 100000 }
loadPlugins: [ ./slow.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ], connections: 1, queue: { timeout: 10s } }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: { slow: {} } }
`, { file: join(dir, 'gw.yaml') })
  t.teardown(() => gw.close())
  const big = Buffer.alloc(1024 * 1024, 'b')
  const post = async (path: string, body: Buffer) => {
    try {
      const res = await request(`${gw.url}${path}`, { method: 'POST', body })
      return [res.statusCode, await res.body.text()]
    } catch (err) {
      return [(err as Error).message]
    }
  }
  // The only connection held 800 ms: the upload waits in the queue, unread, longer than the body timeout.
  const holder = get(`${gw.url}/slow`)
  t.ok(await until(() => gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]?.inFlight === 1))
  t.same(await post('/queued', big), [200, 'ok'], 'queued for a connection')
  t.same(await holder, { status: 200, body: 'ok' })
  t.same(await post('/held', big), [200, 'ok'], 'held by a plugin')
  t.same(await post('/piped', Buffer.alloc(200_000, 'p')), [200, 'ok'], 'held back by a slow plugin stream')
  // Expect: 100-continue: no 100 until the plugin is done; the client is not to blame for waiting for it.
  const socket = await rawSocket(gw)
  let received = ''
  socket.on('data', (c: Buffer) => {
    received += c.toString()
    if (received === 'HTTP/1.1 100 Continue\r\n\r\n') socket.write('hello')
  })
  socket.write('POST /held HTTP/1.1\r\nhost: x\r\nconnection: close\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n')
  await once(socket, 'close')
  t.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/, 'Expect: 100-continue held by a plugin')
  t.equal(bodies, 4)
  t.notOk(gw.logs.some(l => l.msg === 'client too slow: connection closed'), 'no client blamed')
})

t.test('clientTimeouts.minBodyRate: a body that keeps arriving below the rate is cut off, and its upstream connection freed', async t => {
  const { gw, seen } = await gateway(t, '  clientTimeouts: { body: 1s, minBodyRate: 2000 }')
  const socket = await rawSocket(gw)
  const started = performance.now()
  // 1,000 bytes/s, never idle for 1 s: only the rate catches it (at about 1 s + received / 2,000 bytes/s, so 2 s).
  void trickle(socket, 1_000_000, 100)
  await new Promise(resolve => socket.once('close', resolve)) // not once(): a reset while writing is expected
  const took = performance.now() - started
  t.ok(took >= 1_000 && took < 10_000, `closed after ${Math.round(took)} ms`)
  t.ok(await until(() => seen.aborted === 1), 'the upstream try was aborted')
  t.same(await get(`${gw.url}/normal`), { status: 200, body: 'ok' }, 'a normal client is served by the same upstream')
  t.ok(await until(() => idle(gw)), 'every connection free')
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/upload'), { status: 408, error: 'client_body_too_slow' })
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_body_too_slow"\} 1/)
})

t.test('clientTimeouts.minBodyRate with no body timeout (body: 0s): the rate alone cuts a slow body', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { body: 0s, minBodyRate: 2000 }')
  const socket = await rawSocket(gw)
  void trickle(socket, 1_000_000, 100) // 1,000 bytes/s
  await new Promise(resolve => socket.once('close', resolve))
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/upload' }), { status: 408, error: 'client_body_too_slow' })
})

t.test('clientTimeouts.minBodyRate: a body above the rate gets through, however long it takes', async t => {
  const { gw, seen } = await gateway(t, '  clientTimeouts: { body: 1s, minBodyRate: 2000 }')
  const socket = await rawSocket(gw)
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  // 40,000 bytes/s for about 2 s: twenty times the rate, longer than the 1 s allowance alone.
  await trickle(socket, 80_000, 4_000)
  if (!socket.destroyed) await new Promise(resolve => socket.once('close', resolve)) // not once(): a reset while writing is expected
  t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 /)
  t.equal(seen.bodies, 1)
})

t.test('a client that does not read the response is cut off after clientTimeouts.send, and its upstream connection freed', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { send: 300ms }')
  const socket = await rawSocket(gw)
  socket.pause() // never reads
  socket.write('GET /big HTTP/1.1\r\nhost: x\r\n\r\n')
  // A paused socket never sees the close: the access-log line says when the gateway cut it.
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/big' }, 10_000), { status: 200, error: 'client_send_timeout' })
  socket.destroy()
  t.same(await get(`${gw.url}/normal`), { status: 200, body: 'ok' }, 'a normal client is served by the same upstream')
  t.ok(await until(() => idle(gw)), 'every connection free')
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_send_timeout"\} 1/)
})

t.test('a client cut off for not reading is reset: the kernel keeps none of the bytes it never took', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { send: 300ms }')
  const socket = await rawSocket(gw)
  socket.pause() // never reads, and keeps its side open
  socket.write('GET /big HTTP/1.1\r\nhost: x\r\n\r\n')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/big' }, 10_000), { error: 'client_send_timeout' })
  // Closed gracefully, the gateway's socket would wait in FIN-WAIT-1 with the unsent bytes for as
  // long as this client keeps its window shut; reset, it is gone at once.
  t.same(await finWait1(port(gw)), 0, 'no socket of the gateway\'s port waits in FIN-WAIT-1')
  socket.destroy()
})

t.test('over TLS (HTTP/1.1, with or without HTTP/2 offered), a client cut off for not reading is reset too', async t => {
  // resetAndDestroy() throws on a TLS socket (its handle is not TCP): uncaught, in a timer, it ended the process.
  for (const http2 of ['false', 'true']) {
    const { gw } = await gateway(t, '')
    const { gw: tls, ca } = await startH2Gateway(t, http2, catchAllYaml(gw.url), { server: '  clientTimeouts: { send: 300ms }\n' })
    const socket = tlsConnect({ host: '127.0.0.1', port: port(tls), ca: ca.cert, ALPNProtocols: ['http/1.1'] })
    socket.on('error', () => {})
    await once(socket, 'secureConnect')
    socket.pause() // never reads, and keeps its side open
    socket.write('GET /big HTTP/1.1\r\nhost: x\r\n\r\n')
    t.match(await waitForLog(tls.logs, { msg: 'request', path: '/big' }, 10_000), { error: 'client_send_timeout' }, `http2: ${http2}`)
    t.same(await finWait1(port(tls)), 0, `http2: ${http2}: no socket of the gateway's port waits in FIN-WAIT-1`)
    socket.destroy()
  }
})

/** Sockets of local port `port` in FIN-WAIT-1 (state 04 of /proc/net/tcp and tcp6). */
async function finWait1 (port: number): Promise<number> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  let n = 0
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const rows = (await readFile(file, 'utf8').catch(() => '')).split('\n').slice(1)
    for (const row of rows) {
      const [, local, , state] = row.trim().split(/\s+/)
      if (local?.endsWith(`:${hex}`) === true && state === '04') n++
    }
  }
  return n
}

t.test('a client that reads slowly but steadily gets the whole response', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { send: 300ms }')
  const res = await request(`${gw.url}/medium`)
  let bytes = 0
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  t.equal(bytes, MEDIUM)
})

t.test('a client that catches up within clientTimeouts.send each time is not cut off, however long it reads', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { send: 1s }')
  const { socket, received } = await pausedDownload(gw)
  // Reads all it can for 20 ms every 200 ms, and at least one chunk: each pause is far shorter than
  // the 1 s allowed, the whole read three times longer. The wait asserts that nothing cuts the client.
  // On a loaded machine the 200 ms interval slipped to 570 ms and a burst's pause came before its
  // first read (this loop is the gateway's too): the gateway's writes were 460 ms apart, near 600 ms.
  const burst = () => {
    const from = received()
    socket.resume()
    const stop = () => { if (received() > from) socket.pause(); else setTimeout(stop, 5) }
    setTimeout(stop, 20)
  }
  const timer = setInterval(burst, 200)
  await new Promise(resolve => setTimeout(resolve, 3_000))
  clearInterval(timer)
  // A paused socket may not see a close: the access-log line would say the gateway cut it.
  t.notOk(gw.logs.some(l => l.error === 'client_send_timeout'), 'not cut off')
  t.ok(received() > 2 * 1024 * 1024, `it read all along (${received()} bytes in 3 s)`)
  socket.destroy()
})

t.test('clientTimeouts.send: 0s never cuts a client off, however long it leaves the response unread', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { send: 0s }')
  const { socket, received } = await pausedDownload(gw)
  // The wait asserts that nothing cuts the client while it reads nothing.
  await new Promise(resolve => setTimeout(resolve, 500))
  socket.resume()
  // Far more than loopback's socket buffers could still hold after a cut.
  t.ok(await until(() => received() >= 32 * 1024 * 1024 || socket.destroyed), 'reading again')
  t.ok(received() >= 32 * 1024 * 1024, `it read on (${received()} bytes)`)
  t.notOk(gw.logs.some(l => l.error === 'client_send_timeout'), 'not cut off')
  socket.destroy()
})

t.test('incomplete headers get 408 on time, and the socket is fully closed even if the client keeps its side open', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { headers: 400ms }')
  const socket = await rawSocket(gw)
  socket.allowHalfOpen = true // like a client that ignores the end of the answer
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('end', () => {}) // and never ends its side
  socket.write('GET / HTTP/1.1\r\nhost: x\r\n')
  const started = performance.now()
  await once(socket, 'end')
  const took = performance.now() - started
  t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 408 /)
  t.ok(took >= 350 && took < 10_000, `408 after ${Math.round(took)} ms`)
  t.ok(await until(() => connections(gw) === 0, 10_000), 'the gateway destroyed its side: the fd is gone') // after its linger (2 s); at most 10 s on a loaded machine
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_headers"\} 1/)
})

// Node refuses to create a server whose headersTimeout exceeds its requestTimeout (300s by default).
t.test('clientTimeouts.headers longer than 300s: the gateway starts and serves, over plain HTTP, TLS and HTTP/2', async t => {
  const { gw } = await gateway(t, '  clientTimeouts: { headers: 301s }')
  t.same(await get(`${gw.url}/normal`), { status: 200, body: 'ok' })
  t.equal(gw.gateway.app.server.headersTimeout, 301_000, 'the timeout is the one configured')
  const up = await startUpstream()
  t.teardown(() => up.close())
  const h2 = await startH2Gateway(t, 'true', catchAllYaml(up.url), { server: '  clientTimeouts: { headers: 301s }\n' })
  t.equal((await h2Request(await h2.connect(), { ':path': '/x' })).status, 200, 'HTTP/2')
  const tls = await startGateway(catchAllYaml(up.url, {
    server: `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { headers: 301s }\n  tls: { certificates: [ { cert: "${join(h2.ca.certFile, '..', 'server.pem')}", key: "${join(h2.ca.certFile, '..', 'server.key')}" } ] }`
  }))
  t.teardown(() => tls.close())
  const agent = new Agent({ connect: { ca: h2.ca.cert } })
  t.teardown(() => agent.close())
  t.equal((await request(`${tls.url}/x`, { dispatcher: agent })).statusCode, 200, 'TLS')
})

t.test('after a 400 the socket is fully closed, not only half-closed', async t => {
  const { gw } = await gateway(t, '')
  const socket = await rawSocket(gw)
  socket.allowHalfOpen = true
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  socket.on('end', () => {})
  socket.write('GET / HTTP/1.1\r\nbad header\r\n\r\n')
  await once(socket, 'end')
  t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 /)
  t.ok(await until(() => connections(gw) === 0, 10_000), 'the gateway destroyed its side: the fd is gone') // after its linger (2 s); at most 10 s on a loaded machine
})

t.test('server.maxConnections: connections past it are closed, logged, and served again once others close', async t => {
  const { gw } = await gateway(t, '  maxConnections: 2')
  const held = [await rawSocket(gw), await rawSocket(gw)]
  await until(() => connections(gw) === 2)
  const third = await rawSocket(gw)
  const closed = once(third, 'close')
  third.write('GET /x HTTP/1.1\r\nhost: x\r\n\r\n')
  await closed
  t.ok(gw.logs.some(l => typeof l.msg === 'string' && l.msg.startsWith('connection limit reached')), 'logged')
  for (const s of held) s.destroy()
  await until(() => connections(gw) === 0)
  t.same(await get(`${gw.url}/normal`), { status: 200, body: 'ok' })
})

t.test('a small body is read whole before an upstream connection is taken: a slow uploader holds none', async t => {
  // A body of exactly requestBuffer: up to is inclusive.
  const { gw, seen } = await gateway(t, '', '    connections: 1\n    requestBuffer: 1000')
  const socket = await rawSocket(gw)
  // POST (never retried): buffered for requestBuffer alone, then stalls well within clientTimeouts.body.
  socket.write('POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n' + 'a'.repeat(10))
  await until(() => gw.gateway.runtime.inFlight === 1)
  t.same(await get(`${gw.url}/normal`), { status: 200, body: 'ok' }, 'the only connection is free for a normal client')
  t.equal(gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]?.inFlight, 0, 'the slow upload holds no connection')
  socket.write('b'.repeat(990))
  const chunks: Buffer[] = []
  socket.on('data', (c: Buffer) => chunks.push(c))
  await until(() => Buffer.concat(chunks).toString().includes('\r\n\r\nok'))
  t.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 200 /)
  t.equal(seen.bodies, 1)
  socket.destroy()
})

t.test('a response up to responseBuffer is read whole from the upstream: a client that does not read it holds no connection', async t => {
  const BODY = Buffer.alloc(8 * 1024 * 1024, 'y') // more than loopback socket buffers can hide
  let sent = 0
  const up = await startUpstream((req, res) => {
    req.resume()
    if (req.url === '/fixed') { res.on('finish', () => { sent++ }); res.writeHead(200, { 'content-length': String(BODY.length) }).end(BODY); return }
    res.end('ok')
  })
  t.teardown(() => up.close())
  const start = async (responseBuffer: number | string) => {
    const gw = await startGateway(`upstreams:
  up:
    targets: [ { url: "${up.url}" } ]
    connections: 1
    responseBuffer: ${responseBuffer}
    queue: { timeout: 500ms }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
    t.teardown(() => gw.close())
    const socket = await rawSocket(gw)
    t.teardown(() => socket.destroy())
    socket.pause() // never reads
    socket.write('GET /fixed HTTP/1.1\r\nhost: x\r\n\r\n')
    return gw
  }

  const buffered = await start('8MiB') // exactly the body's length: up to is inclusive
  t.ok(await until(() => sent === 1 && idle(buffered)), 'the upstream sent it all and the connection is free')
  t.same(await get(`${buffered.url}/normal`), { status: 200, body: 'ok' }, 'the only connection serves the next client')

  const streamed = await start(0)
  // The unread request first takes the only connection (its own socket was written to first, but a gateway's turns may interleave them).
  t.ok(await until(() => streamed.gateway.runtime.upstreamSnapshots()[0]?.targets[0]?.inFlight === 1), 'the unread response holds the connection')
  t.match(await get(`${streamed.url}/normal`), { status: 503, body: /upstream_busy/ }, 'streamed: the unread response holds the only connection')
})

/** Config after `server:` for one route whose plugin answers every request with `body` (no upstream request). */
function replyingRoute (t: Test, body: Buffer): string {
  sharedWithPlugins('replyBody', body)
  const plugin = writeUserPlugin(t.testdir({}), 'reply', 500, "{ onRequest: () => ({ status: 200, body: shared('replyBody') }) }")
  return `loadPlugins: [ ${JSON.stringify(plugin)} ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: { reply: {} } }
`
}

async function replying (t: Test, body: Buffer, server: string): Promise<TestGateway> {
  const gw = await startGateway(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${server}\n${replyingRoute(t, body)}`)
  t.teardown(() => gw.close())
  return gw
}

t.test('a plugin\'s reply that the client does not read is cut off after clientTimeouts.send', async t => {
  const gw = await replying(t, Buffer.alloc(16 * 1024 * 1024, 'r'), '  clientTimeouts: { send: 300ms }') // more than loopback's socket buffers take
  const socket = await rawSocket(gw)
  socket.pause() // never reads
  socket.write('GET /reply HTTP/1.1\r\nhost: x\r\n\r\n')
  // A paused socket never sees the close: the access-log line says when the gateway cut it.
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/reply' }, 10_000), { status: 200, error: 'client_send_timeout' })
  t.ok(await until(() => connections(gw) === 0), 'the connection is closed')
  socket.destroy()
})

t.test('a plugin\'s large reply, read slowly but steadily, arrives whole: clientTimeouts.send is between writes', async t => {
  // Read at 8 MiB/s at most (a pause after each chunk, by its size): 2.5 s or more. A steady reader
  // still leaves the gateway without a drain for a while: loopback TCP opens its closed receive
  // window again only once half the client's (autotuned, MiB large) buffer is read, which took over
  // 300 ms on a loaded machine. A send timeout of 1 s leaves room for that.
  const body = Buffer.alloc(20 * 1024 * 1024, 'r')
  const gw = await replying(t, body, '  clientTimeouts: { send: 1s }')
  const res = await request(`${gw.url}/reply`)
  let bytes = 0
  const started = performance.now()
  for await (const chunk of res.body) {
    bytes += (chunk as Buffer).length
    await new Promise(resolve => setTimeout(resolve, Math.ceil((chunk as Buffer).length / (8 * 1024))))
  }
  t.equal(bytes, body.length)
  t.ok(performance.now() - started > 2_000, 'the whole read took longer than clientTimeouts.send, twice over')
  const line = await waitForLog(gw.logs, { msg: 'request', path: '/reply' })
  t.match(line, { status: 200, bytes: body.length }, 'the response ended (logged once finished)')
  t.equal(line?.error, undefined, 'not cut')
})

t.test('clientTimeouts.send: 0s never cuts off a plugin\'s reply, however long it is left unread', async t => {
  const body = Buffer.alloc(16 * 1024 * 1024, 'r')
  const gw = await replying(t, body, '  clientTimeouts: { send: 0s }')
  const socket = await rawSocket(gw)
  let received = 0
  socket.on('data', (c: Buffer) => { received += c.length })
  socket.pause()
  socket.write('GET /reply HTTP/1.1\r\nhost: x\r\n\r\n')
  // The waits assert that nothing cuts the client while it reads nothing.
  await new Promise(resolve => setTimeout(resolve, 500))
  socket.resume()
  t.ok(await until(() => received > body.length || socket.destroyed), 'reading again')
  t.ok(received > body.length, `all of it, and the head (${received} bytes)`)
  socket.destroy()

  // HTTP/2: 8 KiB, handed to the stream whole, 7 KiB of it behind a window the client opens only after 500 ms.
  const small = Buffer.alloc(8 * 1024, 's')
  const h2 = await startH2Gateway(t, 'true', replyingRoute(t, small), { server: '  clientTimeouts: { send: 0s }\n' })
  const session = connect(h2.gw.url, { ca: h2.ca.cert, settings: { initialWindowSize: 1024 } })
  t.teardown(() => session.destroy())
  const stream = session.request({ ':path': '/reply' })
  stream.pause()
  await new Promise(resolve => setTimeout(resolve, 500))
  let h2Received = 0
  stream.on('data', (c: Buffer) => { h2Received += c.length })
  stream.resume()
  await new Promise((resolve, reject) => { stream.once('end', resolve); stream.once('error', reject) })
  t.equal(h2Received, small.length, 'HTTP/2: all of it')
})

/** Over HTTP/2 with a window of 1 KiB, never opened further: GET `path` is reset by the gateway after clientTimeouts.send. */
async function shutWindow (t: Test, rest: string, path: string): Promise<void> {
  const { gw, ca } = await startH2Gateway(t, 'true', rest, { server: '  clientTimeouts: { send: 300ms }\n' })
  const session = connect(gw.url, { ca: ca.cert, settings: { initialWindowSize: 1024 } })
  t.teardown(() => session.destroy())
  const stream = session.request({ ':path': path })
  stream.pause()
  stream.on('error', () => {}) // the reset, read below
  t.ok(await until(() => stream.closed, 10_000), 'the gateway closed the stream')
  t.equal(stream.rstCode, constants.NGHTTP2_INTERNAL_ERROR, 'the stream is reset, not ended as if complete')
  t.match(await waitForLog(gw.logs, { msg: 'request', path }), { status: 200, error: 'client_send_timeout' })
}

// 8 KiB: the whole answer is handed to the HTTP/2 stream at once, 7 KiB of it queued in the gateway behind the window.
t.test('HTTP/2: a reply whose last bytes the client grants no window for is reset after clientTimeouts.send', async t => {
  await shutWindow(t, replyingRoute(t, Buffer.alloc(8 * 1024, 'r')), '/reply')
})

t.test('HTTP/2: a proxied answer whose last bytes the client grants no window for is reset after clientTimeouts.send', async t => {
  const up = await startUpstream((req, res) => { req.resume(); res.end(Buffer.alloc(8 * 1024, 'u')) })
  t.teardown(() => up.close())
  await shutWindow(t, catchAllYaml(up.url), '/proxied')
})

t.test('HTTP/2: an answer sent while the client still sends a body nobody reads any more: the stream closes with NO_ERROR and the exchange ends', async t => {
  const up = await startUpstream((req, res) => { res.end('answered before the body'); req.resume() })
  t.teardown(() => up.close())
  const { gw, ca } = await startH2Gateway(t, 'true', catchAllYaml(up.url), { server: '  clientTimeouts: { send: 300ms }\n' })
  const session = connect(gw.url, { ca: ca.cert })
  t.teardown(() => session.destroy())
  const stream = session.request({ ':path': '/early', ':method': 'POST' }, { endStream: false })
  let body = ''
  stream.on('data', (c: Buffer) => { body += c.toString() })
  stream.on('error', () => {}) // a reset, read below
  // A piece of the body every 100 ms, for up to a second: the upstream has answered, undici drops the rest.
  for (let i = 0; i < 10 && !stream.closed; i++) {
    stream.write('more')
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.ok(await until(() => stream.closed, 10_000), 'closed')
  t.equal(body, 'answered before the body')
  t.equal(stream.rstCode, constants.NGHTTP2_NO_ERROR, 'closed normally: the client is told to stop sending')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/early' }), { status: 200 }, 'the exchange ended: its access line')
  t.notOk(gw.logs.some(l => l.error === 'client_send_timeout'), 'not cut')
  t.equal(gw.gateway.runtime.inFlight, 0)
})
