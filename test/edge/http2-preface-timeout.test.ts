import t from 'tap'
import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { once } from 'node:events'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { frame, startH2Gateway } from '../helpers/http2.ts'
import { until } from '../helpers/wait.ts'

// Held until keepAliveTimeout (72 s by default) before, where HTTP/1.1 closes after clientTimeouts.headers.
t.test('an HTTP/2 connection that sends no preface is closed after clientTimeouts.headers (h2c and TLS) and counted as a client_headers timeout; one that did stays', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, ca } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', catchAllYaml(up.url), { server: '  clientTimeouts: { headers: 300ms }\n' })
  const h2cPort = Number(new URL(gw.h2cUrl as string).port)
  const open = async (socket: Socket, event: string) => {
    t.teardown(() => socket.destroy())
    socket.on('error', () => {})
    socket.resume()
    await once(socket, event)
    return socket
  }
  // First: its deadline would pass before the others'.
  const greeted = await open(netConnect(h2cPort, '127.0.0.1'), 'connect')
  const received: Buffer[] = []
  greeted.on('data', (c: Buffer) => received.push(c))
  greeted.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))]))
  const silent = await open(netConnect(h2cPort, '127.0.0.1'), 'connect')
  const halfPreface = await open(netConnect(h2cPort, '127.0.0.1'), 'connect')
  halfPreface.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
  const tls = await open(tlsConnect({ host: '127.0.0.1', port: Number(new URL(gw.url).port), ca: ca.cert, ALPNProtocols: ['h2'] }), 'secureConnect')
  t.equal((tls as unknown as { alpnProtocol: string }).alpnProtocol, 'h2')
  for (const [socket, name] of [[silent, 'h2c, nothing sent'], [halfPreface, 'h2c, no SETTINGS after the magic'], [tls, 'TLS with h2, nothing sent']] as const) {
    t.ok(await until(() => socket.closed, 15_000), `${name}: closed by the gateway`)
  }
  // A PING answered: the gateway still reads it, past the deadline (keepAliveTimeout holds).
  greeted.write(frame(6, 0, 0, Buffer.alloc(8)))
  const pong = () => { const b = Buffer.concat(received); return b.includes(Buffer.from([0, 0, 8, 6, 1, 0, 0, 0, 0])) }
  await until(() => pong() || greeted.closed)
  t.ok(pong() && !greeted.closed, 'a connection that sent its preface is kept')
  // Counted as HTTP/1.1's request head sent too late: the three closed, not the one kept.
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_headers"\} 3\n/)
})
