import t from 'tap'
import { startH2Gateway } from '../helpers/http2.ts'
import { handshake } from '../helpers/tls-gateway.ts'
import { until } from '../helpers/wait.ts'

// Over TLS the socket is gone (no address left to read) by the time Node reports the unfinished head.
t.test('a client that sends part of a request head over TLS and vanishes is logged with its address', async t => {
  const { gw, ca } = await startH2Gateway(t, 'false', `upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  const { socket } = await handshake(gw, ca)
  await new Promise(resolve => socket.write('GET /partial HTTP/1.1\r\nHost: localhost\r\n', resolve))
  socket.destroy()
  const rejected = () => gw.logs.find(l => l.msg === 'request rejected')
  t.ok(await until(() => rejected() !== undefined), 'logged')
  t.match(rejected(), { status: 400, error: 'bad_request', clientIp: '127.0.0.1' })
})
