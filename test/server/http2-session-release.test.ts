import t from 'tap'
import { connect, createServer, type Http2Session } from 'node:http2'
import { once } from 'node:events'
import type { AddressInfo, Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Http2Connections, http2Limits } from '../../src/server/http2.ts'
import { until } from '../helpers/wait.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

t.test('a closed HTTP/2 session is released at once, not held by its idle timer until keepAliveTimeout', async t => {
  const server = createServer()
  // 72 s, the default keepAliveTimeout: far longer than the test.
  const limits = http2Limits({ listen: { host: '127.0.0.1', port: 0 }, http2: true })
  if (limits === undefined) throw new Error('HTTP/2 limits')
  void new Http2Connections(server, limits, 72_000, () => {}, () => {})
  server.on('stream', stream => stream.respond({ ':status': 200 }, { endStream: true }))
  const sessions: Array<WeakRef<Http2Session>> = []
  // The sessions and their sockets closed on the server's side.
  let closed = 0
  server.on('session', session => { sessions.push(new WeakRef(session)); session.once('close', () => { closed++ }) })
  server.on('connection', (socket: Socket) => socket.once('close', () => { closed++ }))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  for (let i = 0; i < 20; i++) {
    const client = connect(url)
    const req = client.request({ ':path': '/' })
    req.resume()
    await once(req, 'end')
    client.close()
    await once(client, 'close')
  }
  // The server's side closes once the client's has.
  t.ok(await until(() => closed === 2 * 20), 'the server\'s sessions and their connections closed')
  for (let i = 0; i < 3; i++) { gc(); await new Promise(resolve => setImmediate(resolve)) }
  t.equal(sessions.length, 20)
  t.equal(sessions.filter(s => s.deref() !== undefined).length, 0, 'every closed session collected')
})
