import t, { type Test } from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { request } from 'undici'
import { catchAllYaml } from './helpers/catch-all.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { until } from './helpers/wait.ts'
import { waitForLog } from './helpers/logs.ts'

/**
 * The tunnel of an upgrade that went through (`Exchange.onUpgrade`), seen on raw sockets: an
 * upstream that accepts `Upgrade: foo` with a 101 of its own headers, then echoes what it
 * receives; "bye" makes it end the tunnel (as does the end of what the client sends), "reset" reset it,
 * "flood" send FLOOD bytes as fast as the tunnel takes them. Plain requests get 200 "plain".
 */
/** 256 MiB: more than loopback's socket buffers can hide, in 64 KiB writes. */
const FLOOD = 256 * 1024 * 1024
const SLAB = Buffer.alloc(64 * 1024, 'f')

function flood (socket: Socket): void {
  let left = FLOOD
  const more = () => {
    while (left > 0 && !socket.destroyed) { left -= SLAB.length; if (!socket.write(SLAB)) { socket.once('drain', more); return } }
  }
  more()
}

/** `lines`: the header lines of the upstream's 101. */
async function tunnelUpstream (t: Test, lines = 'upgrade: foo\r\nconnection: upgrade\r\nx-tunnel: one\r\n'): Promise<{ url: string, tunnels: Socket[], closed: () => number }> {
  const tunnels: Socket[] = []
  let closed = 0
  const server = createServer((_req, res) => { res.end('plain') })
  server.on('upgrade', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
    tunnels.push(socket)
    socket.on('error', () => {}) // a tunnel the gateway cuts while it is written to
    socket.on('close', () => { closed++ })
    socket.write(`HTTP/1.1 101 Switching Protocols\r\n${lines}\r\n`)
    const echo = (c: Buffer) => {
      const text = c.toString()
      if (text.includes('flood')) flood(socket)
      else if (text.includes('bye')) socket.end()
      else if (text.includes('reset')) socket.resetAndDestroy()
      else socket.write(c)
    }
    if (head.length > 0) echo(head)
    socket.on('data', echo)
    socket.on('end', () => socket.end())
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); for (const s of tunnels) s.destroy(); server.close(() => resolve()) }))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, tunnels, closed: () => closed }
}

/** `server`: more lines of the server block (indented). */
async function gateway (t: Test, url: string, route = '', upstreamKeys = '', server = ''): Promise<TestGateway> {
  const block = server === '' ? undefined : `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${server}`
  const gw = await startGateway(catchAllYaml(url, { route: `    upgrade: [foo]\n${route}`, server: block }).replace(`url: "${url}" } ] }`, `url: "${url}" } ]${upstreamKeys} }`))
  t.teardown(() => gw.close())
  return gw
}

/** A client's side of a tunnel: the 101 head as received, and everything after it. */
interface Tunnel { socket: Socket, head: () => string, after: () => string, closed: () => boolean }

/** Sends an upgrade request (and `early`, in the same write) and waits for the 101's head. */
async function openTunnel (t: Test, gw: TestGateway, early = ''): Promise<Tunnel> {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  let closed = false
  socket.on('close', () => { closed = true })
  socket.write(`GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n${early}`)
  t.ok(await until(() => got.includes('\r\n\r\n')), 'the 101 came')
  const end = () => got.indexOf('\r\n\r\n')
  return { socket, head: () => got.slice(0, end()), after: () => got.slice(end() + 4), closed: () => closed }
}

t.test("the 101 relays the upstream's end-to-end headers as they are, and the request id", async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url)
  const tunnel = await openTunnel(t, gw)
  const lines = tunnel.head().split('\r\n')
  t.equal(lines[0], 'HTTP/1.1 101 Switching Protocols')
  t.match(lines[4], /^x-request-id: \S+$/)
  t.same(lines.slice(1, 4), ['upgrade: foo', 'connection: upgrade', 'x-tunnel: one'], "the upstream's header lines, nothing more")
  t.equal(lines.length, 5)
})

t.test("the 101 relays no hop-by-hop header: Connection keeps only upgrade, the fields it names are dropped", async t => {
  const up = await tunnelUpstream(t, 'Upgrade: foo\r\nConnection: Upgrade, x-secret\r\nX-Secret: internal\r\nKeep-Alive: timeout=5\r\n' +
    'Proxy-Authenticate: Basic realm="inner"\r\nx-tunnel: one\r\nConnection: keep-alive\r\n')
  const gw = await gateway(t, up.url)
  const tunnel = await openTunnel(t, gw)
  const lines = tunnel.head().split('\r\n')
  t.same(lines.slice(0, 4), ['HTTP/1.1 101 Switching Protocols', 'Upgrade: foo', 'Connection: upgrade', 'x-tunnel: one'])
  t.match(lines[4], /^x-request-id: \S+$/)
  t.equal(lines.length, 5, 'nothing else: no X-Secret, Keep-Alive, Proxy-Authenticate, second Connection')
  tunnel.socket.write('still a tunnel')
  t.ok(await until(() => tunnel.after() === 'still a tunnel'), 'bytes flow both ways')
})

t.test("the 101 carries the gateway's request id only, not the upstream's", async t => {
  const up = await tunnelUpstream(t, 'upgrade: foo\r\nconnection: upgrade\r\nX-Request-Id: from-upstream\r\n')
  const gw = await gateway(t, up.url)
  const tunnel = await openTunnel(t, gw)
  const ids = tunnel.head().split('\r\n').filter(l => /^x-request-id:/i.test(l))
  t.equal(ids.length, 1, `one x-request-id: ${JSON.stringify(ids)}`)
  t.notMatch(ids[0], /from-upstream/)
})

// RFC 9110 7.8: a server switches only to a protocol the client offered. h2c, never tunnelled (docs/edge.md), least of all.
for (const protocol of ['h2c', 'bar', 'foo, bar']) {
  t.test(`a 101 to a protocol the client did not offer (${protocol}) is a 502, and the upstream's side is closed`, async t => {
    const up = await tunnelUpstream(t, `upgrade: ${protocol}\r\nconnection: upgrade\r\n`)
    const gw = await gateway(t, up.url)
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    let got = ''
    socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
    socket.write('GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
    t.ok(await until(() => got.includes('\r\n\r\n')), 'answered')
    t.match(got, /^HTTP\/1\.1 502 /)
    t.match(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)), { error: 'bad_gateway' })
    t.ok(await until(() => up.closed() === 1), "the upstream's side is closed")
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 502 })
  })
}

// A 101 undici does not take for an upgrade fails an assertion of its own: no retry (the upstream would see it twice).
for (const [lines, what] of [['', 'no fields'], ['upgrade: foo\r\n', 'no Connection: upgrade'], ['connection: upgrade\r\n', 'no Upgrade']]) {
  t.test(`a 101 with ${what} is a 502, not retried`, async t => {
    const up = await tunnelUpstream(t, lines)
    const gw = await gateway(t, up.url)
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    t.teardown(() => { socket.destroy() })
    socket.on('error', () => {})
    let got = ''
    socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
    socket.write('GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
    t.ok(await until(() => got.includes('\r\n\r\n')), 'answered')
    t.match(got, /^HTTP\/1\.1 502 /)
    t.match(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)), { error: 'bad_gateway' })
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 502 })
    t.equal(up.tunnels.length, 1, 'the upstream saw the request once')
    t.match(gw.logs.find(l => l.msg === 'upstream request failed'), { err: { message: /^the upstream's 101 is no upgrade/ } })
  })
}

t.test('an upgrade whose Expect is not 100-continue gets 417 before routing, as any request (docs/edge.md)', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url)
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.write('GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\nExpect: bogus\r\n\r\n')
  t.ok(await until(() => got.includes('\r\n\r\n')), 'answered')
  t.match(got, /^HTTP\/1\.1 417 /)
  t.match(await waitForLog(gw.logs, { msg: 'request rejected' }), { status: 417, error: 'expectation_failed', path: '/t' })
  t.equal(up.tunnels.length, 0, 'never reached the upstream')
})

t.test('bytes the client sent right behind its upgrade request reach the upstream', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url)
  // In the same write as the request, so that Node hands them over as the upgrade's head.
  const tunnel = await openTunnel(t, gw, 'early')
  t.ok(await until(() => tunnel.after() === 'early'), `echoed: ${JSON.stringify(tunnel.after())}`)
})

t.test("a tunnel outlives the route's request and response timeouts", async t => {
  const up = await tunnelUpstream(t)
  // 1 s: room for the 101 to come on a loaded machine (400 ms seen under load), the tunnel being what must outlive them.
  const gw = await gateway(t, up.url, '    timeouts: { request: 1s, response: 1s }\n')
  const tunnel = await openTunnel(t, gw)
  // Past the route's timeouts (armed before the 101 came, so due before this wait ends): asserts
  // that nothing cuts the tunnel meanwhile.
  await new Promise(resolve => setTimeout(resolve, 1_100))
  tunnel.socket.write('still')
  t.ok(await until(() => tunnel.after() === 'still'), `echoed after the timeout: ${JSON.stringify(tunnel.after())}`)
})

t.test('an open tunnel holds none of the connections: the next request gets the only one', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url, '', ', connections: 1, queue: { timeout: 1s }')
  await openTunnel(t, gw)
  const res = await request(`${gw.url}/plain`)
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'plain')
})

// A reset, unlike an end, is not passed on by pipe(): the tunnel closes the other side itself.
for (const [how, upstreamSays, closeClient] of [['closing', 'bye', 'destroy'], ['resetting', 'reset', 'resetAndDestroy']] as const) {
  t.test(`either end ${how} the tunnel closes the other`, async t => {
    const up = await tunnelUpstream(t)
    const gw = await gateway(t, up.url)
    const byUpstream = await openTunnel(t, gw)
    byUpstream.socket.write(upstreamSays)
    t.ok(await until(() => byUpstream.closed()), "the upstream's end closed the client's socket")

    const byClient = await openTunnel(t, gw)
    t.ok(await until(() => up.tunnels.length === 2))
    const before = up.closed()
    byClient.socket[closeClient]()
    t.ok(await until(() => up.closed() === before + 1), "the client's end closed the upstream's socket")
    t.ok(await until(() => gw.logs.filter(l => l.msg === 'request').length === 2), 'both logged')
    t.same(gw.logs.filter(l => l.msg === 'request').map(l => l.status), [101, 101])
  })
}

t.test("the upstream's end closes the client's connection, even when the client keeps its half open", async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url)
  const tunnel = await openTunnel(t, gw)
  tunnel.socket.allowHalfOpen = true // like a client that ignores the end of the tunnel
  let ended = false
  tunnel.socket.on('end', () => { ended = true })
  tunnel.socket.write('bye')
  t.ok(await until(() => ended), 'the client saw the end')
  const server = gw.gateway.app.server as unknown as { _connections: number }
  // After the linger (2 s); at most 10 s on a loaded machine.
  t.ok(await until(() => server._connections === 0, 10_000), 'the gateway holds no half-open connection')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 101 })
})

/**
 * Opens a tunnel whose client reads nothing, has the upstream send it 4 KiB a turn of the event loop
 * until the client's socket buffers are full and the gateway holds some bytes for it, then ends the
 * upstream's side. Returns the tunnel and how many bytes the upstream sent.
 */
async function endWhileHeld (t: Test, gw: TestGateway, up: Awaited<ReturnType<typeof tunnelUpstream>>): Promise<{ tunnel: Tunnel, sent: number }> {
  // The gateway's side of the client's connection.
  let held: Socket | undefined
  gw.gateway.app.server.once('connection', (s: Socket) => { held = s })
  const tunnel = await openTunnel(t, gw)
  tunnel.socket.pause()
  const upstream = up.tunnels[0] as Socket
  const piece = Buffer.alloc(4096, 'p')
  let sent = 0
  while ((held as Socket).writableLength === 0) {
    upstream.write(piece)
    sent += piece.length
    await new Promise(resolve => setImmediate(resolve))
  }
  upstream.end()
  t.ok(await until(() => up.closed() === 1), "the upstream's side closed")
  return { tunnel, sent }
}

t.test("the upstream's end reaches a client that reads slowly after all it was sent: the bytes the gateway still held are not lost", async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url)
  const { tunnel, sent } = await endWhileHeld(t, gw, up)
  let ended = false
  tunnel.socket.on('end', () => { ended = true })
  tunnel.socket.resume()
  t.ok(await until(() => ended), 'the client saw the end')
  t.equal(tunnel.after().length, sent, `after every byte (${sent})`)
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 101 })
  t.notOk(gw.logs.some(l => l.error !== undefined), 'not cut')
})

t.test('a client that reads nothing of what the upstream sent before its end is cut after clientTimeouts.send', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url, '', '', '  clientTimeouts: { send: 300ms }')
  await endWhileHeld(t, gw, up)
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 101, error: 'client_send_timeout' })
  const server = gw.gateway.app.server as unknown as { _connections: number }
  t.ok(await until(() => server._connections === 0), "the client's connection is closed")
})

t.test('a tunnel opened is an answer from the target, not a failure: one failure would eject it, and it is not ejected', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url, '', ', passive: { consecutiveFailures: 1, baseEjection: 10m, maxEjection: 10m }')
  await openTunnel(t, gw)
  const target = gw.gateway.runtime.upstreams.get('up')?.snapshot().targets[0]
  t.equal(target?.ejectedUntil, null, 'not ejected')
  t.ok((target?.latencyMs ?? 0) > 0, `and timed as an answer (${String(target?.latencyMs)} ms)`)
})

/** An upgrade request that declares a 5-byte body, sent with it ("hello"); what comes back. */
function upgradeWithBody (t: Test, gw: TestGateway): { socket: Socket, got: () => string } {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  let got = ''
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.write('GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 5\r\n\r\nhello')
  return { socket, got: () => got }
}

t.test('an upgrade request that declares a body: its bytes go through the tunnel', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url)
  const { got } = upgradeWithBody(t, gw)
  t.ok(await until(() => got().endsWith('\r\n\r\nhello')), `the 101, then the bytes echoed: ${JSON.stringify(got())}`)
  t.match(got(), /^HTTP\/1\.1 101 /)
})

t.test('the body timeouts do not apply to an upgrade that declares a body: its bytes belong to the tunnel', async t => {
  const up = await tunnelUpstream(t)
  const gw = await startGateway(catchAllYaml(up.url, { route: '    upgrade: [foo]\n', server: 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { body: 200ms, minBodyRate: 1000 }\n' }))
  t.teardown(() => gw.close())
  const { socket, got } = upgradeWithBody(t, gw)
  t.ok(await until(() => got().endsWith('\r\n\r\nhello')), 'the 101, then the bytes echoed')
  // Past the body timeout, at a rate far below minBodyRate: asserts that nothing cuts the tunnel meanwhile.
  await new Promise(resolve => setTimeout(resolve, 600))
  socket.write('still')
  t.ok(await until(() => got().endsWith('hellostill')), `echoed after the body timeout: ${JSON.stringify(got().slice(-20))}`)
  t.notOk(gw.logs.some(l => l.error === 'client_body_timeout' || l.error === 'client_body_too_slow'))
})

t.test("closing the gateway closes the upstream's side of an open tunnel too", async t => {
  const up = await tunnelUpstream(t)
  const gw = await startGateway(catchAllYaml(up.url, { route: '    upgrade: [foo]\n', server: 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 100ms\n' }))
  const tunnel = await openTunnel(t, gw)
  await gw.close()
  t.ok(await until(() => tunnel.closed()), "the client's side closed")
  t.ok(await until(() => up.closed() === 1), "the upstream's side closed")
})

t.test('a tunnel whose client reads nothing of what the upstream sends is cut after clientTimeouts.send; an idle one is not', async t => {
  const up = await tunnelUpstream(t)
  const gw = await gateway(t, up.url, '', '', '  clientTimeouts: { send: 300ms }')
  const tunnel = await openTunnel(t, gw)
  await new Promise(resolve => setTimeout(resolve, 600)) // idle, twice clientTimeouts.send
  tunnel.socket.write('still here')
  t.ok(await until(() => tunnel.after() === 'still here'), 'an idle tunnel is not cut')
  tunnel.socket.pause() // reads nothing from now on
  tunnel.socket.write('flood')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }, 10_000), { status: 101, error: 'client_send_timeout' })
  t.ok(await until(() => up.closed() === 1), "the upstream's side is closed too")
  const server = gw.gateway.app.server as unknown as { _connections: number }
  t.ok(await until(() => server._connections === 0), 'and the client\'s')
})

t.test('a tunnel whose client reads in bursts, each pause shorter than clientTimeouts.send, is not cut', async t => {
  const up = await tunnelUpstream(t)
  // 1 s: five times each pause, so that a loaded machine's late timer does not make one a cut; still
  // half the 2 s the client reads in bursts, so a time not restarted by each drain would cut it.
  const gw = await gateway(t, up.url, '', '', '  clientTimeouts: { send: 1s }')
  const tunnel = await openTunnel(t, gw)
  let received = 0
  tunnel.socket.on('data', (c: Buffer) => { received += c.length })
  tunnel.socket.write('flood')
  // Reads all it can for 20 ms every 200 ms, for 2 s: the wait asserts that nothing cuts the client.
  tunnel.socket.pause()
  const timer = setInterval(() => { tunnel.socket.resume(); setTimeout(() => tunnel.socket.pause(), 20) }, 200)
  await new Promise(resolve => setTimeout(resolve, 2_000))
  clearInterval(timer)
  t.notOk(tunnel.closed(), 'still open')
  t.notOk(gw.logs.some(l => l.error === 'client_send_timeout'), 'not cut')
  t.ok(received > 2 * 1024 * 1024, `it read all along (${received} bytes in 2 s)`)
})
