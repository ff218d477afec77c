import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { connect as h2connect } from 'node:http2'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Agent, Client, request } from 'undici'
import { startUpstream, type TestUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { catchAllYaml } from './helpers/catch-all.ts'
import { until } from './helpers/wait.ts'
import { CLI_FROM_SOURCES } from './helpers/run-cli.ts'
import { createTestCa } from './helpers/certs.ts'
import { handshake } from './helpers/tls-gateway.ts'

const ROOT = new URL('..', import.meta.url).pathname

/** An upstream that answers each request after `delayMs`; counts what it received and what was aborted. */
async function slowUpstream (t: Test, delayMs: number): Promise<{ up: TestUpstream, counts: { received: number, aborted: number } }> {
  const counts = { received: 0, aborted: 0 }
  const up = await startUpstream((req, res) => {
    counts.received++
    const timer = setTimeout(() => res.end(`done ${req.url}`), delayMs)
    res.on('close', () => { if (!res.writableFinished) { clearTimeout(timer); counts.aborted++ } })
  })
  t.teardown(() => up.close())
  return { up, counts }
}

const gatewayYaml = (upstream: string, shutdownTimeout: string) =>
  catchAllYaml(upstream, { server: `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: ${shutdownTimeout}` })

/** Sends `n` requests, each on its own connection, and resolves with their outcome. */
function inFlight (url: string, n: number): Array<Promise<{ status: number, body: string } | Error>> {
  return Array.from({ length: n }, async (_, i) => {
    const client = new Client(url)
    try {
      const res = await client.request({ path: `/r${i}`, method: 'GET' })
      return { status: res.statusCode, body: await res.body.text() }
    } catch (err) {
      return err as Error
    } finally {
      await client.destroy()
    }
  })
}

/**
 * Whether a new connection to `url` is turned away: refused, or reset during the handshake when it
 * raced the listener's close. Never served.
 */
async function refused (url: string): Promise<boolean> {
  return request(`${url}/new`).then(async res => { await res.body.dump(); return false },
    (err: { code?: string, syscall?: string }) => err.syscall === 'connect' && (err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET'))
}

t.test('close() lets in-flight requests finish and refuses new connections', async t => {
  const { up, counts } = await slowUpstream(t, 1_000)
  const gw = await startGateway(gatewayYaml(up.url, '10s'))
  const pending = inFlight(gw.url, 3)
  await until(() => counts.received === 3)

  const started = performance.now()
  const closed = gw.close()
  t.ok(await refused(gw.url), 'a new connection is refused once close has begun')
  t.same(await Promise.all(pending), [0, 1, 2].map(i => ({ status: 200, body: `done /r${i}` })), 'in-flight requests completed')
  await closed
  const took = performance.now() - started
  t.ok(took < 5_000, `close resolved once they were done (${Math.round(took)} ms), not at the deadline`)
  t.equal(counts.aborted, 0, 'nothing was cut')
})

t.test('close() does not wait for connections that have sent nothing (a preconnect, a TCP check), over HTTP, h2c or TLS, nor for the admin listener\'s', async t => {
  const { up, counts } = await slowUpstream(t, 500)
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const leaf = ca.issue('gateway', 'DNS:api.example.com')
  for (const tls of [false, true]) {
    const server = `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 20s` +
      (tls ? `\n  tls: { certificates: [ { cert: "${leaf.certFile}", key: "${leaf.keyFile}" } ] }` : '\n  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }')
    const gw = await startGateway(catchAllYaml(up.url, { server: `${server}\nadmin:\n  listen: { host: 127.0.0.1, port: 0 }` }))
    const port = Number(new URL(gw.url).port)
    // Over TLS, one still before its handshake and one that finished it; over HTTP, a bare connection, and one on the h2c port. And one on the admin port.
    const silent = [connect(port, '127.0.0.1'), connect(Number(new URL(gw.adminUrl as string).port), '127.0.0.1')]
    if (!tls) silent.push(connect(Number(new URL(gw.h2cUrl as string).port), '127.0.0.1'))
    if (tls) silent.push((await handshake(gw, ca, 'api.example.com')).socket)
    // None reads what the gateway sends (an h2c session's SETTINGS): a reader would see the
    // gateway's FIN and close, which ends an HTTP/2 session on its own.
    await Promise.all(silent.map(async s => { s.on('error', () => {}); if (s.connecting) await once(s, 'connect') }))
    const agent = new Agent({ connect: { ca: ca.cert, servername: 'api.example.com' } })
    t.teardown(() => agent.close())
    const received = counts.received
    const pending = request(`${gw.url}/under-way`, { dispatcher: agent }).then(async r => ({ status: r.statusCode, body: await r.body.text() }))
    t.ok(await until(() => counts.received === received + 1))
    const started = performance.now()
    await gw.close()
    const took = performance.now() - started
    t.ok(took < 10_000, `${tls ? 'TLS' : 'HTTP'}: close resolved once the request was done (${Math.round(took)} ms), not at the deadline`)
    t.same(await pending, { status: 200, body: 'done /under-way' }, 'the request under way finished')
    await Promise.all(silent.map(s => s.destroyed ? undefined : once(s.resume(), 'close')))
  }
  t.equal(counts.aborted, 0)
})

t.test('a request arriving on an open connection while closing gets 503 JSON', async t => {
  // The response under way has its head out before the stop (one begun after it says Connection:
  // close, and the requests pipelined behind it go unanswered: see test/server/drain-keep-alive.test.ts).
  const counts = { received: 0 }
  // The response is ended once the late request has reached the gateway (after it, the connection
  // would be idle, and closed at once by the stop).
  let finish = () => {}
  const up = await startUpstream((req, res) => {
    counts.received++
    // Chunked: streamed to the client as it comes (one with a small Content-Length is read whole first).
    res.write(`done ${req.url}`)
    finish = () => res.end()
  })
  t.teardown(() => { finish(); return up.close() })
  const gw = await startGateway(gatewayYaml(up.url, '10s'))
  let serverSide: Socket | undefined
  gw.gateway.app.server.once('connection', (s: Socket) => { serverSide = s })
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString() })
  const ended = once(socket, 'end')
  const [r0, r1] = ['GET /r0 HTTP/1.1\r\nHost: gateway.test\r\n\r\n', 'GET /r1 HTTP/1.1\r\nHost: gateway.test\r\nX-Request-Id: late-1\r\n\r\n']
  socket.write(r0)
  await until(() => received.startsWith('HTTP/1.1 200 '))

  const closed = gw.close()
  t.ok(await refused(gw.url), 'the listener is closed')
  socket.write(r1)
  t.ok(await until(() => serverSide?.bytesRead === r0.length + r1.length), 'the late request reached the gateway while the first was under way')
  finish()
  await ended
  await closed
  const [first, second] = received.split(/(?=HTTP\/1\.1 )/)
  t.match(first, /^HTTP\/1\.1 200 [^]*connection: keep-alive[^]*done \/r0\r\n0\r\n\r\n$/i, 'the in-flight request completed')
  t.match(second, /^HTTP\/1\.1 503 [^]*connection: close[^]*\r\n\r\n\{"error":"shutting_down","message":"[^"]+","requestId":"late-1"\}$/i,
    'the late one was refused with the gateway\'s JSON error, and the connection closed')
  t.equal(counts.received, 1, 'the late request never reached the upstream')
})

t.test('the shutdownTimeout deadline cuts requests that take longer', async t => {
  // Answers far past the deadline (its requests are aborted, so this costs nothing).
  const { up, counts } = await slowUpstream(t, 30_000)
  const gw = await startGateway(gatewayYaml(up.url, '300ms'))
  const pending = inFlight(gw.url, 2)
  await until(() => counts.received === 2)

  const started = performance.now()
  await gw.close()
  const took = performance.now() - started
  t.ok(took >= 250 && took < 10_000, `close took ${Math.round(took)} ms with a 300 ms deadline`)
  for (const outcome of await Promise.all(pending)) t.type(outcome, Error, 'the client saw its request cut')
  await until(() => counts.aborted === 2)
  t.equal(counts.aborted, 2, 'the upstream requests were aborted')
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request').length === 2), 'both logged')
  t.same(gw.logs.filter(l => l.msg === 'request').map(l => [l.status, l.error]), [[503, 'shutdown'], [503, 'shutdown']],
    'logged as cut by the shutdown (503, nothing sent), not as clients gone (499)')
})

t.test('the CLI drains in-flight requests on SIGTERM and exits 0', async t => {
  const { up, counts } = await slowUpstream(t, 1_000)
  const dir = t.testdir({ 'gateway.yaml': gatewayYaml(up.url, '10s') })
  const child = spawn(process.execPath, [...CLI_FROM_SOURCES, 'start', '-c', join(dir, 'gateway.yaml')],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  // 'close', not 'exit': its output read to the end (the last lines may come after 'exit').
  const exited = once(child, 'close') as Promise<[number | null, string | null]>
  const logs: Array<Record<string, unknown>> = []
  createInterface({ input: child.stdout }).on('line', line => { logs.push(JSON.parse(line) as Record<string, unknown>) })

  await until(() => logs.some(l => l.msg === 'gateway listening') || child.exitCode !== null, 20_000)
  const url = logs.find(l => l.msg === 'gateway listening')?.url
  if (typeof url !== 'string') { t.fail(`the gateway did not start: ${stderr}`); return }

  const pending = inFlight(url, 3)
  await until(() => counts.received === 3)
  child.kill('SIGTERM')
  await until(() => logs.some(l => l.msg === 'shutting down'))
  t.ok(await refused(url), 'a new connection is refused once shutdown has begun')
  t.same(await Promise.all(pending), [0, 1, 2].map(i => ({ status: 200, body: `done /r${i}` })), 'in-flight requests completed')
  const [code, signal] = await exited
  t.same({ code, signal }, { code: 0, signal: null }, `exited 0 ${stderr}`)
  t.ok(logs.some(l => l.msg === 'stopped'), 'logged that it stopped')
})

t.test('close() does not wait for an HTTP/2 client that never reads a response the gateway has finished sending', async t => {
  const { up } = await slowUpstream(t, 0)
  const gw = await startGateway(catchAllYaml(up.url, { server: 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 20s\n  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }' }))
  const session = h2connect(gw.h2cUrl as string)
  session.on('error', () => {})
  t.teardown(() => session.destroy())
  // A POST answered 200, its response never read.
  const answered = session.request({ ':method': 'POST', ':path': '/done' })
  answered.on('error', () => {})
  answered.end('body')
  await once(answered, 'response')
  t.ok(await until(() => gw.gateway.runtime.inFlight === 0), 'nothing in flight')
  const started = performance.now()
  await gw.close()
  const took = performance.now() - started
  t.ok(took < 10_000, `close resolved after ${Math.round(took)} ms (a linger), not at the 20 s deadline`)
})
