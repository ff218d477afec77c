import t, { type Test } from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { join } from 'node:path'
import { request } from 'undici'
import { catchAllYaml } from './helpers/catch-all.ts'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { sharedWithPlugins, writeUserPlugin } from './helpers/user-plugin.ts'
import { until } from './helpers/wait.ts'

/**
 * Clients that misbehave around an upgrade (reset the connection, pipeline it behind a request,
 * never close), and upstreams whose 101 or tunnel does not keep to the rules. The gateway runs in
 * this process: an error it leaves unhandled would end the run, so each test also checks that none
 * came (see `uncaught`) and that the gateway still answers afterwards.
 */
const uncaught: unknown[] = []
const onUncaught = (err: unknown): void => { uncaught.push(err) }
process.prependListener('uncaughtException', onUncaught)
t.teardown(() => { process.removeListener('uncaughtException', onUncaught) })
t.beforeEach(() => { uncaught.length = 0 })

const UPGRADE = 'GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n'

/**
 * An upstream taking `Upgrade: foo`: its 101 (`lines`, its header lines) comes only once `answer()`
 * is called (at once when `hold` is false); then it echoes, and ends its side when the gateway ends
 * its (unless `endBack` is false). `upgrades`: the sockets of the upgrades it got. Plain requests
 * get 200 "plain", but /slow, which gets no answer (`slow()` counts them) until `release()`.
 */
async function upstream (t: Test, options: { lines?: string, hold?: boolean, endBack?: boolean } = {}): Promise<{
  url: string, upgrades: Socket[], answer: () => void, closed: () => number, slow: () => number, release: () => void }> {
  const upgrades: Socket[] = []
  let closed = 0
  const slow: ServerResponse[] = []
  const server = createServer((req, res) => { if (req.url === '/slow') slow.push(res); else res.end('plain') })
  const lines = options.lines ?? 'upgrade: foo\r\nconnection: upgrade\r\n'
  const open = (socket: Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\n${lines}\r\n`)
    socket.on('data', (c: Buffer) => socket.write(c))
  }
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    upgrades.push(socket)
    socket.on('error', () => {})
    socket.on('close', () => { closed++ })
    if (options.endBack !== false) socket.on('end', () => socket.end())
    if (options.hold !== true) open(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); for (const s of upgrades) s.destroy(); server.close(() => resolve()) }))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    upgrades,
    answer: () => { for (const s of upgrades) if (!s.destroyed) open(s) },
    closed: () => closed,
    slow: () => slow.length,
    release: () => { for (const res of slow) res.end('slow') }
  }
}

/** `route`: more keys of the catch-all route (which takes `upgrade: [foo]`), indented 4 spaces; `path`: its match instead of /*. */
async function gateway (t: Test, url: string, route = '', path = '/*'): Promise<TestGateway> {
  const gw = await startGateway(catchAllYaml(url, { route: `    upgrade: [foo]\n${route}` }).replace('path: /* }', `path: ${path} }`))
  t.teardown(() => gw.close())
  return gw
}

/** A raw connection to the gateway: what it received so far, whether it closed. */
function client (t: Test, gw: TestGateway): { socket: Socket, got: () => string, closed: () => boolean } {
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.on('error', () => {})
  let got = ''
  let closed = false
  socket.on('data', (c: Buffer) => { got += c.toString('latin1') })
  socket.on('close', () => { closed = true })
  return { socket, got: () => got, closed: () => closed }
}

function connections (gw: TestGateway): number {
  return (gw.gateway.app.server as unknown as { _connections: number })._connections
}

/** The gateway still answers a plain request, and nothing went uncaught. */
async function stillServing (t: Test, gw: TestGateway): Promise<void> {
  const res = await request(`${gw.url}/plain`)
  t.ok(res.statusCode >= 200, `the gateway still answers (${res.statusCode})`)
  await res.body.text()
  t.same(uncaught, [], 'no uncaught exception')
}

// A FIN is the client gone too: HTTP/1 sockets are half-open, so it brings no 'close' of its own.
for (const [how, leave] of [
  ['resets its connection', (s: Socket) => { s.resetAndDestroy() }],
  ['ends its side (FIN)', (s: Socket) => { s.end() }]
] as const) {
  t.test(`a client that ${how} while its upgrade waits for the upstream's 101: logged 499, the upstream's side closed`, async t => {
    const up = await upstream(t, { hold: true })
    const gw = await gateway(t, up.url)
    const c = client(t, gw)
    c.socket.write(UPGRADE)
    t.ok(await until(() => up.upgrades.length === 1), 'the upgrade reached the upstream')
    leave(c.socket)
    t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 499 })
    t.ok(await until(() => up.closed() === 1), "the upstream's side is closed")
    t.ok(await until(() => connections(gw) === 0), "the client's connection is closed")
    up.answer() // too late: nobody to relay it to
    await stillServing(t, gw)
  })
}

t.test('an upgrade whose first tunnel bytes and FIN come in the same write as its request: 101, the bytes relayed, their echo back', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  const c = client(t, gw)
  c.socket.allowHalfOpen = true // reads what the tunnel sends back after its own end
  c.socket.end(UPGRADE + 'hello')
  t.ok(await until(() => c.got().endsWith('\r\n\r\nhello')), 'the 101, then the echo')
  t.match(c.got(), /^HTTP\/1\.1 101 /)
  t.ok(await until(() => c.closed()), 'the tunnel closed after both ends')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 101 })
  await stillServing(t, gw)
})

t.test('a client that ends its side (FIN) while a request hook runs on its upgrade: logged 499, the upgrade never sent upstream', async t => {
  const gates = sharedWithPlugins<Array<() => void>>('upgrade-gates', [])
  const dir = t.testdir({})
  writeUserPlugin(dir, 'gate', 500, "{ onRequest: () => new Promise<void>(resolve => { shared('upgrade-gates').push(resolve) }) }")
  const up = await upstream(t)
  const gw = await startGateway(`loadPlugins: [ ./gate.ts ]\n${catchAllYaml(up.url, { route: '    upgrade: [foo]\n    plugins: { gate: {} }\n' })}`, { file: join(dir, 'gw.yaml') })
  t.teardown(() => gw.close())
  const c = client(t, gw)
  c.socket.write(UPGRADE)
  t.ok(await until(() => gates.length === 1), 'the hook holds the upgrade')
  c.socket.end()
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 499 })
  gates[0]?.()
  const plain = request(`${gw.url}/plain`) // the gate holds it too: let through once it waits
  t.ok(await until(() => gates.length === 2))
  gates[1]?.()
  t.equal((await plain).statusCode, 200)
  await (await plain).body.text()
  t.equal(up.upgrades.length, 0, 'the upstream saw no upgrade')
  t.same(uncaught, [], 'no uncaught exception')
})

for (const [what, upgrade, route, path, status] of [
  ['no route (404)', 'foo', '', '/other', 404],
  ['a protocol the route does not take (400)', 'bar', '', '/*', 400],
  ['a plugin refusing it (401)', 'foo', '    plugins: { key-auth: { header: x-key } }\n', '/*', 401]
] as const) {
  t.test(`a client that resets its connection after reading the answer to an upgrade refused by ${what}`, async t => {
    const up = await upstream(t)
    const gw = await gateway(t, up.url, route, path)
    const c = client(t, gw)
    c.socket.allowHalfOpen = true // its side stays open after the gateway's end: the reset comes on a live socket
    c.socket.write(UPGRADE.replace('Upgrade: foo', `Upgrade: ${upgrade}`))
    t.ok(await until(() => c.got().includes('\r\n\r\n')), 'answered')
    t.match(c.got(), new RegExp(`^HTTP/1\\.1 ${status} `))
    c.socket.resetAndDestroy()
    t.ok(await until(() => connections(gw) === 0), 'the gateway saw the reset')
    await stillServing(t, gw)
    t.equal(up.upgrades.length, 0, 'the upstream saw nothing')
  })
}

t.test('requests pipelined ahead of an upgrade in the same write are answered first, in order, then the tunnel opens', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  const c = client(t, gw)
  c.socket.write('GET /plain HTTP/1.1\r\nHost: a\r\n\r\nGET /plain HTTP/1.1\r\nHost: a\r\n\r\n' + UPGRADE)
  t.ok(await until(() => c.got().includes('HTTP/1.1 101 ')), 'the 101 came')
  t.match(c.got(), /^HTTP\/1\.1 200 [^]*plainHTTP\/1\.1 200 [^]*plainHTTP\/1\.1 101 /, 'both answers, then the 101')
  c.socket.write('through')
  t.ok(await until(() => c.got().endsWith('\r\n\r\nthrough')), 'the tunnel echoes')
  await stillServing(t, gw)
})

t.test('an unrouted request and an unrouted upgrade in the same write: two 404s, then the connection closes', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '', '/t')
  const c = client(t, gw)
  c.socket.write('GET /nothing HTTP/1.1\r\nHost: a\r\n\r\n' + UPGRADE.replace('/t', '/nothing'))
  t.ok(await until(() => c.closed()), 'closed')
  t.equal(c.got().match(/HTTP\/1\.1 404 /g)?.length, 2, 'both answered')
  t.equal(gw.logs.filter(l => l.msg === 'request rejected' && l.status === 404).length, 2, 'both logged')
  await stillServing(t, gw)
})

t.test('an upgrade pipelined behind a request whose client then resets: nothing is answered on the dead connection', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  const c = client(t, gw)
  // The upstream never answers /slow: the upgrade waits behind it when the client resets.
  c.socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n' + UPGRADE)
  t.ok(await until(() => up.slow() === 1), 'the first request reached the upstream')
  c.socket.resetAndDestroy()
  t.ok(await until(() => connections(gw) === 0), 'the gateway saw the reset')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/slow' }), { status: 499 })
  await stillServing(t, gw)
  t.equal(up.upgrades.length, 0, 'the upgrade never went out')
})

t.test('an upgrade pipelined behind a request whose client then ends its side: the request is answered, the upgrade never goes out', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  let held: Duplex | undefined
  gw.gateway.app.server.prependListener('upgrade', (_req: IncomingMessage, socket: Duplex) => { held = socket })
  const c = client(t, gw)
  c.socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n' + UPGRADE)
  t.ok(await until(() => up.slow() === 1), 'the first request reached the upstream')
  c.socket.end()
  t.ok(await until(() => held?.readableEnded === true), 'the gateway read the end')
  up.release()
  t.ok(await until(() => c.closed()), 'the connection closed')
  t.match(c.got(), /^HTTP\/1\.1 200 [^]*slow$/, 'the request was answered, and nothing after it')
  await stillServing(t, gw)
  t.equal(up.upgrades.length, 0, 'the upgrade never went out')
})

t.test('an upgrade pipelined behind a request, sent with its tunnel bytes and its end: the tunnel opens in its turn', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  let held: Duplex | undefined
  gw.gateway.app.server.prependListener('upgrade', (_req: IncomingMessage, socket: Duplex) => { held = socket })
  const c = client(t, gw)
  c.socket.end('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n' + UPGRADE + 'hello')
  t.ok(await until(() => up.slow() === 1), 'the first request reached the upstream')
  t.ok(await until(() => held?.readableEnded === true), 'the gateway read the end')
  up.release()
  t.ok(await until(() => c.closed()), 'the connection closed once the tunnel ended')
  t.match(c.got(), /^HTTP\/1\.1 200 [^]*slow[^]*HTTP\/1\.1 101 [^]*hello$/, 'the request answered, then the tunnel, its bytes echoed')
  t.equal(up.upgrades.length, 1, 'the upgrade went out')
  await stillServing(t, gw)
})

t.test('an upgrade over HTTP/1.0 (RFC 9110 7.8): refused with 400 upgrade_refused, never sent upstream', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  const c = client(t, gw)
  c.socket.write('GET /t HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
  t.ok(await until(() => c.closed()), 'the connection closed')
  t.match(c.got(), /^HTTP\/1\.1 400 [^]*"error":"upgrade_refused"/)
  t.match(await waitForLog(gw.logs, { msg: 'request rejected', path: '/t' }), { status: 400, error: 'upgrade_refused', route: 'all' })
  await stillServing(t, gw)
  t.equal(up.upgrades.length, 0, 'the upstream saw no upgrade')
})

t.test('a refused upgrade whose client keeps its side open: the gateway closes the connection shortly after its answer', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url)
  const c = client(t, gw)
  c.socket.allowHalfOpen = true
  c.socket.write(UPGRADE.replace('Upgrade: foo', 'Upgrade: bar'))
  t.ok(await until(() => c.got().includes('\r\n\r\n')), 'answered')
  t.match(c.got(), /^HTTP\/1\.1 400 /)
  // Past the linger (2 s): the client, which would wait for ever, sees the end; the gateway holds nothing.
  // (At most 10 s: room for a loaded machine past the linger, the test being over as soon as it closes.)
  t.ok(await until(() => connections(gw) === 0, 10_000), 'the gateway closed the connection')
  t.match(await waitForLog(gw.logs, { msg: 'request rejected', status: 400 }), { error: 'upgrade_refused' })
})

t.test("a tunnel whose client ended its side: the upstream may still send, and is closed once idle for the route's timeouts.idle", async t => {
  const up = await upstream(t, { endBack: false })
  // 1 s: the upstream's "last words" must come back through the gateway within it, a few turns of a
  // loaded machine's event loop; the idle close is awaited all the same.
  const gw = await gateway(t, up.url, '    timeouts: { idle: 1s }\n')
  const c = client(t, gw)
  c.socket.allowHalfOpen = true
  c.socket.write(UPGRADE)
  t.ok(await until(() => c.got().includes('\r\n\r\n')), 'the 101 came')
  t.ok(await until(() => up.upgrades.length === 1))
  up.upgrades[0]?.on('end', () => { up.upgrades[0]?.write('last words') })
  c.socket.end()
  t.ok(await until(() => c.got().endsWith('last words')), 'what the upstream sent after the end reached the client')
  t.ok(await until(() => c.closed(), 5_000), "the client's side closed")
  // The upstream keeps its half open (allowHalfOpen): its writes fail once the gateway's side is gone.
  const upstreamSide = up.upgrades[0] as Socket
  t.ok(await until(() => { upstreamSide.write('more'); return up.closed() === 1 }), "the upstream's side closed")
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 101 })
})

t.test("an upstream's large non-101 answer to an upgrade reaches the client whole, then the connection closes", async t => {
  const size = 8 * 1024 * 1024
  const server = createServer()
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {})
    socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-length: ${size}\r\n\r\n` + 'x'.repeat(size))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }))
  // A short send timeout: a stalled answer would be cut well before the test's own timeout.
  const gw = await startGateway(catchAllYaml(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
    route: '    upgrade: [foo]\n',
    server: 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { send: 3s }\n'
  }))
  t.teardown(() => gw.close())
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => { socket.destroy() })
  socket.allowHalfOpen = true // the gateway's linger, not the client, closes the connection
  socket.on('error', () => {})
  let bytes = 0
  let head = ''
  socket.on('data', (c: Buffer) => { if (bytes === 0) head = c.toString('latin1', 0, 12); bytes += c.length })
  const ended = new Promise<void>(resolve => socket.on('end', () => resolve()))
  socket.write(UPGRADE)
  await ended
  t.equal(head, 'HTTP/1.1 403')
  t.ok(bytes > size, `every byte came (${bytes})`)
  t.ok(await until(() => connections(gw) === 0, 10_000), 'the gateway closed the connection after its linger')
  t.match(await waitForLog(gw.logs, { msg: 'request', path: '/t' }), { status: 403 })
  t.notOk(gw.logs.some(l => l.error === 'client_send_timeout'), 'not cut')
})

t.test('an upgrade pipelined behind a response that closes the connection (413): not routed after it', async t => {
  const up = await upstream(t)
  const gw = await gateway(t, up.url, '    plugins: { request-size: { maxBody: 10 } }\n')
  const c = client(t, gw)
  c.socket.write('POST /t HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n' + 'b'.repeat(20) + UPGRADE)
  // After the linger (2 s): the gateway reads nothing more on it, the client's own end included.
  t.ok(await until(() => c.closed(), 10_000), 'the connection closed')
  t.match(c.got(), /^HTTP\/1\.1 413 [^]*connection: close/i)
  await stillServing(t, gw)
  // The 200's access line is written as its response closes, which can be after the client has read it.
  const logged = () => gw.logs.filter(l => l.msg === 'request' || l.msg === 'request rejected').map(l => l.status)
  await until(() => logged().includes(200))
  t.same(logged(), [413, 200], 'the upgrade was neither routed nor logged')
  t.equal(up.upgrades.length, 0, 'the upstream saw no upgrade')
})
