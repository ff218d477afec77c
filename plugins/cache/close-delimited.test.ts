import t from 'tap'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'

// An HTTP/1.0 upstream whose body ends when the connection closes: undici takes a reset after the
// head for a clean end (client-h1 onHttpSocketError), so a cut body cannot be told from a whole one.
let served = 0
const sockets = new Set<Socket>()
const server = createServer(socket => {
  sockets.add(socket)
  socket.on('close', () => sockets.delete(socket))
  socket.on('error', () => {})
  socket.once('data', () => {
    served++
    socket.write('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nCache-Control: public, max-age=60\r\n\r\npart1;')
    setTimeout(() => { socket.write('part2;'); setTimeout(() => socket.resetAndDestroy(), 20) }, 20)
  })
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }))

const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(server.address() as AddressInfo).port}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cache: {} } }
`)
t.teardown(() => gw.close())

t.test('a body delimited by the connection closing (here cut by a reset) is not stored', async t => {
  const first = await request(`${gw.url}/cut`)
  await first.body.text().catch(() => '')
  t.match(String(first.headers['cache-status']), /; detail=close-delimited/, 'not stored, and said why')
  const second = await request(`${gw.url}/cut`)
  await second.body.text().catch(() => '')
  t.notMatch(String(second.headers['cache-status']), /; hit/, 'the cut body is not served as a hit')
  t.equal(served, 2, 'the upstream is asked again')
})
