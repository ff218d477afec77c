import t from 'tap'
import { connect as tlsConnect } from 'node:tls'
import { once } from 'node:events'
import { startUpstream } from '../helpers/upstream.ts'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startH2Gateway } from '../helpers/http2.ts'
import { waitForLog } from '../helpers/logs.ts'

// A slow client's warning says what was cut: over HTTP/2 the stream only, over HTTP/1.1 the connection.

t.test('a stalled upload: "stream reset" over HTTP/2, "connection closed" over HTTP/1.1', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { gw, ca, connect } = await startH2Gateway(t, 'true', catchAllYaml(up.url), { server: '  clientTimeouts: { body: 300ms }\n' })

  const session = await connect()
  session.on('error', () => {})
  const stalled = session.request({ ':path': '/h2', ':method': 'POST' })
  stalled.on('error', () => {})
  stalled.write('part of a body')
  t.match(await waitForLog(gw.logs, { msg: 'client too slow: stream reset' }, 10_000), { error: 'client_body_timeout' }, 'HTTP/2')
  t.notOk(session.closed || session.destroyed, 'its connection stays')

  const socket = tlsConnect({ host: '127.0.0.1', port: Number(new URL(gw.url).port), ca: ca.cert, ALPNProtocols: ['http/1.1'] })
  t.teardown(() => socket.destroy())
  socket.on('error', () => {})
  await once(socket, 'secureConnect')
  socket.resume()
  const closed = once(socket, 'close')
  socket.write('POST /h1 HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000\r\n\r\npart of a body')
  t.match(await waitForLog(gw.logs, { msg: 'client too slow: connection closed' }, 10_000), { error: 'client_body_timeout' }, 'HTTP/1.1')
  await closed
  t.ok(socket.closed, 'its connection closed')
  t.equal(gw.logs.filter(l => String(l.msg).startsWith('client too slow')).length, 2, 'one line each')
})
