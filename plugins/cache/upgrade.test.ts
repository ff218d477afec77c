import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { request } from 'undici'
import { catchAllYaml } from '../../test/helpers/catch-all.ts'
import { startGateway } from '../../test/helpers/gateway.ts'

/**
 * An upgrade (WebSocket) on a cached route: never answered from what plain GETs stored, and what
 * the upstream answers it (a 101, or a refusal only upgrades get) never stored for plain GETs.
 */
t.test('the cache leaves upgrades alone', async t => {
  const upgrades: string[] = []
  const sockets: Socket[] = []
  const upstream = createServer((req, res) => {
    res.writeHead(200, { 'cache-control': 'public, max-age=60' }).end(`plain ${String(req.url)}`)
  })
  upstream.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgrades.push(String(req.url))
    sockets.push(socket)
    socket.on('error', () => {})
    socket.on('end', () => socket.end())
    // /refused: a cacheable refusal meant for the upgrade alone.
    if (req.url === '/refused') socket.end('HTTP/1.1 200 OK\r\ncache-control: public, max-age=60\r\ncontent-length: 13\r\n\r\nupgrade-reply')
    else socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n')
  })
  await new Promise<void>(resolve => upstream.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); upstream.close(() => resolve()) }))
  const gw = await startGateway(catchAllYaml(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, { route: '    plugins:\n      cache: {}\n' }))
  t.teardown(() => gw.close())

  /** The head of what the gateway answers an upgrade to `path`. */
  const upgrade = (path: string) => new Promise<string>((resolve, reject) => {
    const url = new URL(gw.url)
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n`)
    })
    let text = ''
    socket.on('data', (c: Buffer) => {
      text += c.toString()
      if (text.includes('\r\n\r\n')) { socket.destroy(); resolve(text.slice(0, text.indexOf('\r\n\r\n'))) }
    })
    socket.on('error', reject)
  })
  const get = async (path: string) => {
    const res = await request(gw.url + path)
    return { body: await res.body.text(), status: String(res.headers['cache-status']) }
  }

  t.equal((await get('/stored')).body, 'plain /stored')
  t.match((await get('/stored')).status, /hit/, 'a plain GET is stored')
  const head = await upgrade('/stored')
  t.match(head, /^HTTP\/1\.1 101 /, 'an upgrade to a stored URL goes to the upstream, not answered from the store')
  t.same(upgrades, ['/stored'])

  t.match(await upgrade('/refused'), /^HTTP\/1\.1 200 [^]*cache-status: [^\r]*fwd=bypass; detail=upgrade/i, 'the refusal says the cache was not used')
  const after = await get('/refused')
  t.equal(after.body, 'plain /refused', 'the answer to an upgrade is not stored for plain GETs')
  t.match(after.status, /fwd=uri-miss/)
})
