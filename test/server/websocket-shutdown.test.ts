import t, { type Test } from 'tap'
import { once } from 'node:events'
import { createServer, type IncomingMessage } from 'node:http'
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { startGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'
import { configFile } from '../reload/helpers.ts'

// A WebSocket never ends on its own: at a stop it used to hold the drain for the whole
// server.shutdownTimeout, then be cut (1006) at both ends. It is now closed when the drain begins,
// 1001 (Going Away) to both ends, as a reload closes it (1012 to the client).

/**
 * A ws echo server; `closes` gets each connection's close code as it saw it. With `hold`, each
 * upgrade waits for release() before it is accepted.
 */
async function echoServer (t: Test, hold = false): Promise<{ url: string, closes: number[], upgrades: () => number, release: () => void }> {
  const held: Array<(ok: boolean) => void> = []
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    verifyClient: (_info: unknown, accept: (ok: boolean) => void) => { if (hold) held.push(accept); else accept(true) }
  })
  const closes: number[] = []
  wss.on('connection', ws => {
    ws.on('message', (data, binary) => ws.send(data, { binary }))
    ws.on('close', code => closes.push(code))
  })
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    closes,
    upgrades: () => held.length,
    release: () => { for (const accept of held.splice(0)) accept(true) }
  }
}

const server = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 20s'

async function echoed (ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message')
  ws.send(text)
  return String((await reply)[0])
}

t.test('a stop closes an open WebSocket at once: 1001 to the client and the upstream, not held until shutdownTimeout', async t => {
  process.env.PORTCULLIS_LOG_LIMIT_MS = '0'
  const up = await echoServer(t)
  const gw = await startGateway(catchAllYaml(up.url, { server }))
  t.teardown(() => gw.close())
  const ws = new WebSocket(gw.url.replace('http', 'ws') + '/live')
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  t.equal(await echoed(ws, 'hello'), 'hello')

  const closed = once(ws, 'close') as Promise<[number, Buffer]>
  const started = performance.now()
  const stopped = gw.close()
  const [code, reason] = await closed
  t.equal(code, 1001, 'the client is told the gateway goes away')
  t.equal(String(reason), 'gateway shutting down')
  await stopped
  const took = performance.now() - started
  t.ok(took < 5_000, `the stop took ${Math.round(took)} ms, with shutdownTimeout 20s`)
  t.ok(await until(() => up.closes.length === 1), 'the upstream saw the close')
  t.same(up.closes, [1001], 'the upstream is told the client goes away')
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/live'), { status: 101, error: 'shutdown' }, 'logged as closed by the shutdown')
  t.match(gw.logs.find(l => l.msg === 'shutting down: open WebSockets closed'), { tunnels: 1 })
})

t.test('a WebSocket its upstream accepts during the drain is closed at once, with 1001', async t => {
  const up = await echoServer(t, true)
  const gw = await startGateway(catchAllYaml(up.url, { server }))
  t.teardown(() => gw.close())
  const ws = new WebSocket(gw.url.replace('http', 'ws') + '/late')
  t.teardown(() => ws.terminate())
  ws.on('error', () => {})
  t.ok(await until(() => up.upgrades() === 1), 'the upgrade reached the upstream')
  const closed = once(ws, 'close') as Promise<[number, Buffer]>
  const started = performance.now()
  const stopped = gw.close()
  t.ok(await until(() => gw.logs.some(l => l.msg === 'shutting down')), 'the stop began')
  up.release()
  const [code] = await closed
  t.equal(code, 1001)
  await stopped
  t.ok(performance.now() - started < 5_000, 'the stop did not wait for the deadline')
  t.ok(await until(() => up.closes.length === 1))
  t.same(up.closes, [1001])
})

t.test('a tunnel that is not a WebSocket is cut when the drain begins, as a reload cuts it', async t => {
  const tunnels: Socket[] = []
  let upstreamClosed = false
  const raw = createServer((_req, res) => { res.end('plain') })
  raw.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    tunnels.push(socket)
    socket.on('error', () => {}).on('close', () => { upstreamClosed = true }).on('end', () => socket.end()).resume()
    socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n')
  })
  await new Promise<void>(resolve => raw.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of tunnels) s.destroy(); raw.close(() => resolve()) }))
  const gw = await startGateway(catchAllYaml(`http://127.0.0.1:${(raw.address() as AddressInfo).port}`, { route: '    upgrade: [foo]\n', server }))
  t.teardown(() => gw.close())
  const client = tcpConnect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => client.destroy())
  client.on('error', () => {})
  let got = ''
  client.on('data', (c: Buffer) => { got += c.toString('latin1') })
  client.write('GET /t HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n')
  t.ok(await until(() => got.includes('\r\n\r\n')), 'the 101 came')
  const clientClosed = once(client, 'close')
  const started = performance.now()
  await gw.close()
  await clientClosed
  t.ok(performance.now() - started < 5_000, 'the stop did not wait for the deadline')
  t.ok(await until(() => upstreamClosed), "the upstream's side closed too")
  t.match(gw.logs.find(l => l.msg === 'request' && l.path === '/t'), { status: 101, error: 'shutdown' })
})

t.test('workers: SIGTERM closes an open WebSocket with 1001 and the stop ends well before shutdownTimeout', async t => {
  const up = await echoServer(t)
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: 2
  shutdownTimeout: 20s
upstreams:
  ws: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: live, match: { path: /* }, upstream: ws }
`)
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const primary = await cli.waitForLine(l => l.msg === 'gateway listening' && Array.isArray(l.workers), 60_000)
  if (primary === undefined) throw new Error(`the cluster did not start (stderr: ${cli.stderr()})`)
  const ws = new WebSocket(String(primary.url).replace('http', 'ws') + '/live')
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  t.equal(await echoed(ws, 'hello'), 'hello')

  const closed = once(ws, 'close') as Promise<[number, Buffer]>
  const started = performance.now()
  const exited = stopCli(cli)
  const [code] = await closed
  t.equal(code, 1001, 'the client is told the gateway goes away')
  t.equal(await exited, 0, 'exit 0')
  const took = performance.now() - started
  t.ok(took < 10_000, `the stop took ${Math.round(took)} ms, with shutdownTimeout 20s`)
  t.ok(await until(() => up.closes.length === 1))
  t.same(up.closes, [1001], 'the upstream is told the client goes away')
})
