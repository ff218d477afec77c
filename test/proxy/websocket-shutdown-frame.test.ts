import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { until } from '../helpers/wait.ts'

// A stop closes open WebSockets with 1001, each direction at a frame's end. A frame the gateway was
// in the middle of relaying used to be cut there, its end seeing the connection broken (1006): it
// is now relayed to its end (within the close's grace, 1 s), then the close frame follows.

const MB = 1024 * 1024
const server = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\n  shutdownTimeout: 20s'

/**
 * A TCP link to `port` whose `held` direction ('in': from `port`) carries its first 256 KiB, then
 * nothing more until release(): a large frame is relayed in part, the rest comes later. Closed at teardown.
 */
async function heldLink (t: Test, port: number, held: 'in' | 'out'): Promise<{ port: number, release: () => void }> {
  const open = new Set<Socket>()
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const link = createServer({ allowHalfOpen: true }, near => {
    const far = connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    for (const s of [near, far]) {
      open.add(s)
      s.on('error', () => {}).on('close', () => { open.delete(s); near.destroy(); far.destroy() })
    }
    const [from, to] = held === 'in' ? [far, near] : [near, far]
    to.pipe(from)
    let passed = 0
    const first = (chunk: Buffer): void => {
      const n = Math.min(chunk.length, 256 * 1024 - passed)
      passed += n
      to.write(chunk.subarray(0, n))
      if (n === chunk.length) return
      from.off('data', first).pause()
      void released.then(() => { to.write(chunk.subarray(n)); from.pipe(to) })
    }
    from.on('data', first)
  })
  await new Promise<void>(resolve => link.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of open) s.destroy(); link.close(() => resolve()) }))
  return { port: (link.address() as AddressInfo).port, release }
}

/** The stop has closed the WebSockets (sent their close frames where it could). */
const closing = async (gw: TestGateway) => await until(() => gw.logs.some(l => l.msg === 'shutting down: open WebSockets closed'))

/**
 * A ws server: a text message `send` has it send a 1 MB binary message (ws writes it whole).
 * `messages`: the sizes of the messages it got; `closes`: the close code its connection saw;
 * `bytesRead`: what its connection has read so far.
 */
async function upstreamServer (t: Test): Promise<{ port: number, messages: number[], closes: number[], bytesRead: () => number }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  const messages: number[] = []
  const closes: number[] = []
  let socket: Socket | undefined
  wss.on('connection', (ws, req) => {
    socket = req.socket as Socket
    ws.on('message', (data: Buffer, binary) => {
      if (!binary && String(data) === 'send') ws.send(Buffer.alloc(MB, 7))
      else messages.push(data.length)
    })
    ws.on('close', code => closes.push(code))
  })
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  return { port: (wss.address() as AddressInfo).port, messages, closes, bytesRead: () => socket?.bytesRead ?? 0 }
}

/** A ws client of `port`; `socket()`: its connection, once upgraded. */
async function client (t: Test, port: number): Promise<{ ws: WebSocket, messages: number[], socket: () => Socket }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/live`)
  t.teardown(() => ws.terminate())
  ws.on('error', () => {})
  const messages: number[] = []
  ws.on('message', (data: Buffer) => messages.push(data.length))
  let socket: Socket | undefined
  ws.once('upgrade', res => { socket = res.socket as Socket })
  await once(ws, 'open')
  return { ws, messages, socket: () => socket as Socket }
}

t.test("a frame from the upstream half relayed when the stop begins is relayed whole, then the client's 1001", async t => {
  const up = await upstreamServer(t)
  const link = await heldLink(t, up.port, 'in')
  const gw = await startGateway(catchAllYaml(`http://127.0.0.1:${link.port}`, { server }))
  t.teardown(() => gw.close())
  const c = await client(t, Number(new URL(gw.url).port))
  const closed = once(c.ws, 'close') as Promise<[number, Buffer]>
  c.ws.send('send')
  t.ok(await until(() => c.socket().bytesRead > 64 * 1024), 'the message has begun to arrive')
  const stopped = gw.close()
  t.ok(await closing(gw), 'the stop closed the WebSocket')
  t.ok(c.socket().bytesRead < MB / 2, 'in the middle of the frame')
  link.release()
  const [code] = await closed
  t.same(c.messages, [MB], 'the client got the message whole')
  t.equal(code, 1001, 'then the close frame (not 1006)')
  await stopped
  t.ok(await until(() => up.closes.length === 1), 'the upstream saw the close')
  t.same(up.closes, [1001])
})

t.test("a frame from the client half relayed when the stop begins is relayed whole, then the upstream's 1001", async t => {
  const up = await upstreamServer(t)
  const gw = await startGateway(catchAllYaml(`http://127.0.0.1:${up.port}`, { server }))
  t.teardown(() => gw.close())
  const link = await heldLink(t, Number(new URL(gw.url).port), 'out')
  const c = await client(t, link.port)
  const closed = once(c.ws, 'close') as Promise<[number, Buffer]>
  c.ws.send(Buffer.alloc(MB, 7))
  t.ok(await until(() => up.bytesRead() > 64 * 1024), 'the message has begun to arrive')
  const stopped = gw.close()
  t.ok(await closing(gw), 'the stop closed the WebSocket')
  t.ok(up.bytesRead() < MB / 2, 'in the middle of the frame')
  link.release()
  const [code] = await closed
  t.equal(code, 1001, 'the client is told the gateway goes away')
  await stopped
  t.ok(await until(() => up.closes.length === 1), 'the upstream saw the close')
  t.same(up.messages, [MB], 'the upstream got the message whole')
  t.same(up.closes, [1001], 'then the close frame (not 1006)')
})
