import t from 'tap'
import { join } from 'node:path'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { floodBody } from '../helpers/raw-http.ts'
import { startGateway } from '../helpers/gateway.ts'
import { sharedWithPlugins, writeUserPlugin } from '../helpers/user-plugin.ts'

// An upstream that answers a long upload at once (200, Content-Length 5, keep-alive) and reads
// none of it: undici ends its try and drops the client's request. The client got its answer,
// then the gateway read no more of its body and held the connection until keepAliveTimeout (72 s),
// megabytes stuck in socket buffers. Now as after a plugin's early answer: the connection ends
// once the answer is out (a Content-Length left longer than 64 KiB says so: Connection: close).
const sockets = new Set<Socket>()
const upstream = createServer(socket => {
  sockets.add(socket)
  socket.on('error', () => {}).on('close', () => sockets.delete(socket))
  let head = ''
  const onData = (c: Buffer): void => {
    head += c.toString('latin1')
    if (!head.includes('\r\n\r\n')) return
    socket.off('data', onData)
    socket.pause() // none of the body is read
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello')
  }
  socket.on('data', onData)
})
await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
t.teardown(() => { for (const s of sockets) s.destroy(); upstream.close() })

const dir = t.testdir({})
writeUserPlugin(dir, 'through', 100, "{ onRequest (req) { if (req.path === '/through') req.pipeBodyThrough(new (shared('PassThrough'))()) } }")
sharedWithPlugins('PassThrough', PassThrough)
const gw = await startGateway(`
server:
  listen: { host: 127.0.0.1, port: 0 }
  clientTimeouts: { body: 2s }
loadPlugins: [ ./through.ts ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { through: {} } }
`, { file: join(dir, 'gateway.yaml') })
t.teardown(() => gw.close())
const port = Number(new URL(gw.url).port)

/** Floods `head`'s body; resolves with what came back, or 'held' if the connection is still open 20 s on (keepAliveTimeout is 72 s). */
async function flood (head: string[]): Promise<{ answer: string, ended: boolean } | 'held'> {
  const data = Buffer.alloc(64 * 1024, 'a')
  const piece = head.includes('Transfer-Encoding: chunked') ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data
  let timer: NodeJS.Timeout | undefined
  const held = new Promise<'held'>(resolve => { timer = setTimeout(resolve, 20_000, 'held') })
  const result = await Promise.race([floodBody(port, head, piece, 1024 * 1024 * 1024), held])
  clearTimeout(timer)
  return result
}

for (const path of ['/plain', '/through']) {
  t.test(`${path}: a chunked body the upstream left unread: answered, then the connection ends`, async t => {
    const res = await flood([`POST ${path} HTTP/1.1`, 'Host: x', 'Transfer-Encoding: chunked'])
    if (res === 'held') { t.fail('the connection was held open'); return }
    t.match(res.answer, /^HTTP\/1.1 200 OK\r\n/)
    t.match(res.answer, /\r\n\r\nhello$/)
    t.ok(res.ended, 'the gateway ended the connection')
  })

  t.test(`${path}: a Content-Length of 1e9 the upstream left unread: answered with Connection: close, then the connection ends`, async t => {
    const res = await flood([`POST ${path} HTTP/1.1`, 'Host: x', 'Content-Length: 1000000000'])
    if (res === 'held') { t.fail('the connection was held open'); return }
    t.match(res.answer, /^HTTP\/1.1 200 OK\r\n/)
    t.match(res.answer, /\r\nconnection: close\r\n/i)
    t.match(res.answer, /\r\n\r\nhello$/)
    t.ok(res.ended, 'the gateway ended the connection')
  })
}
