import t from 'tap'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startH2Gateway } from '../helpers/http2.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'

// A tunnel (or HTTP/2 session) whose client vanished without a FIN or RST, its upstream silent,
// is found only by TCP keepalive: without it, held for ever. Seen from the kernel (`ss`), as Node
// sets it on the accepted socket's handle, out of JavaScript's sight.

const hasSs = (() => { try { execFileSync('ss', ['-V']); return true } catch { return false } })()

/** Whether the gateway's socket (local `port`) to the client's `clientPort` has a keepalive timer. */
function keepalive (port: number, clientPort: number): boolean {
  const out = execFileSync('ss', ['-tnoeH', 'state', 'established', `( sport = :${port} and dport = :${clientPort} )`]).toString()
  return out.includes('timer:(keepalive')
}

const portOf = (url: string) => Number(new URL(url).port)

t.test('client connections have TCP keepalive: a WebSocket tunnel, HTTP/2 over TLS, h2c', { skip: hasSs ? false : 'needs ss (iproute2)' }, async t => {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  const gw = await startGateway(catchAllYaml(`http://127.0.0.1:${(wss.address() as AddressInfo).port}`))
  t.teardown(() => gw.close())
  const ws = new WebSocket(gw.url.replace('http', 'ws') + '/live')
  t.teardown(() => ws.terminate())
  // 'open' comes in the same tick as 'upgrade'.
  const [[upgrade]] = await Promise.all([once(ws, 'upgrade') as Promise<[IncomingMessage]>, once(ws, 'open')])
  t.ok(await until(() => keepalive(portOf(gw.url), upgrade.socket.localPort as number)), 'the WebSocket\'s client connection')

  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw: h2gw, connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', catchAllYaml(up.url))
  const tls = await connect()
  t.ok(await until(() => keepalive(portOf(h2gw.url), tls.socket.localPort as number)), 'HTTP/2 over TLS')
  const h2c = await connect({ h2c: true })
  t.ok(await until(() => keepalive(portOf(h2gw.h2cUrl as string), h2c.socket.localPort as number)), 'h2c')
})
