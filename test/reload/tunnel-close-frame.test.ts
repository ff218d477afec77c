import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect as tcpConnect, type Socket } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { until } from '../helpers/wait.ts'
import { configFile, gatewayYaml, startFromFile, type FileGateway } from './helpers.ts'

// server.reloadTunnelTimeout closes a WebSocket with close frames, so that both ends can tell a
// planned close from a broken connection (1006).

/** A ws echo server; `closes` gets each connection's close code as the server saw it. */
async function echoServer (t: Test): Promise<{ url: string, closes: number[], messages: Buffer[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  const closes: number[] = []
  const messages: Buffer[] = []
  wss.on('connection', ws => {
    ws.on('message', (data, binary) => { messages.push(data as Buffer); ws.send(data, { binary }) })
    ws.on('close', code => closes.push(code))
  })
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, closes, messages }
}

async function setup (t: Test): Promise<{ gw: FileGateway, up: Awaited<ReturnType<typeof echoServer>>, reload: () => Promise<void> }> {
  const up = await echoServer(t)
  const yaml = (name: string) => gatewayYaml({ ws: [up.url] }, `  - { name: ${name}, match: { path: /* }, upstream: ws }`, '')
    .replace('server:\n', 'server:\n  reloadTunnelTimeout: 100ms\n')
  const cf = await configFile(yaml('live'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await cf.remove() })
  const reload = async () => {
    await cf.write(yaml('renamed'))
    t.equal((await gw.reloader.reload('admin')).result, 'success')
  }
  return { gw, up, reload }
}

t.test('a WebSocket closed by server.reloadTunnelTimeout: 1012 to the client, 1001 to the upstream', async t => {
  const { gw, up, reload } = await setup(t)
  const ws = new WebSocket(gw.url.replace('http', 'ws') + '/live')
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  ws.send('hello')
  t.equal(String((await once(ws, 'message'))[0]), 'hello')
  const closed = once(ws, 'close') as Promise<[number, Buffer]>
  await reload()
  const [code, reason] = await closed
  t.equal(code, 1012, 'the client is told the service restarts')
  t.equal(String(reason), 'config reloaded')
  t.ok(await until(() => up.closes.length === 1), 'the upstream saw the close')
  t.same(up.closes, [1001], 'the upstream is told the client goes away')
  t.ok(await until(() => gw.logs.some(l => l.msg === 'request' && l.status === 101 && l.error === 'reload')), 'logged as closed for the reload')
})

t.test('a frame half sent when the tunnel closes gets no close frame in its middle: that side is cut', async t => {
  const { gw, up, reload } = await setup(t)
  const { port } = new URL(gw.url)
  const client: Socket = tcpConnect(Number(port), '127.0.0.1')
  t.teardown(() => client.destroy())
  client.write('GET /live HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')
  let got = Buffer.alloc(0)
  client.on('data', chunk => { got = Buffer.concat([got, chunk]) })
  t.ok(await until(() => got.includes('\r\n\r\n')), 'switched')
  t.match(got.toString('latin1'), /^HTTP\/1\.1 101 /)
  got = Buffer.alloc(0)
  // A masked binary frame of 10 bytes, only its first 4 sent.
  client.write(Buffer.from([0x82, 0x8a, 1, 2, 3, 4, 9, 9, 9, 9]))
  const clientClosed = once(client, 'close')
  await reload()
  await clientClosed
  t.same([...got], [0x88, 17, 0x03, 0xf4, ...Buffer.from('config reloaded')], 'the client, at a frame\'s end on its side, gets 1012')
  t.ok(await until(() => up.closes.length === 1), 'the upstream saw the connection end')
  t.same(up.closes, [1006], 'cut, not sent a close frame inside the frame under way (a protocol error)')
  t.same(up.messages, [], 'nothing half sent was taken for a message')
})
