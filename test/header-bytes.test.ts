import t, { type Test } from 'tap'
import { connect, createServer, type AddressInfo } from 'node:net'
import { startGateway, type TestGateway } from './helpers/gateway.ts'
import { deadPort } from './helpers/upstream.ts'

// Header values are bytes (RFC 9110 5.5): UTF-8 or not, they reach the other side unchanged. Node
// and undici decode them as latin1 (one char per byte); written back as anything else, `é` (C3 A9)
// would arrive as C3 83 C2 A9 and FF as C3 BF, or as EF BF BD (U+FFFD).
const UTF8 = Buffer.from('café', 'utf8')
const NOT_UTF8 = Buffer.from([0x61, 0xff, 0x62])
const fields = Buffer.concat([Buffer.from('X-Utf8: '), UTF8, Buffer.from('\r\nX-Ff: '), NOT_UTF8, Buffer.from('\r\n')])

/** The bytes of header `name`'s value in a raw head, or undefined. */
function valueOf (head: Buffer, name: string): Buffer | undefined {
  const at = head.toString('latin1').toLowerCase().indexOf(`\r\n${name}: `)
  if (at < 0) return undefined
  const start = at + name.length + 4
  return head.subarray(start, head.indexOf('\r\n', start))
}

/** An upstream answering every request with `response` and closing; `heads` collects the requests' raw bytes. */
async function rawUpstream (t: Test, response: Buffer): Promise<{ url: string, heads: Buffer[] }> {
  const heads: Buffer[] = []
  const server = createServer(socket => {
    let head = Buffer.alloc(0)
    socket.on('data', (c: Buffer) => {
      head = Buffer.concat([head, c])
      if (head.includes('\r\n\r\n')) { heads.push(head); socket.end(response) }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, heads }
}

/** Sends `head` (with Connection: close) and reads the raw response until the gateway closes the connection. */
function rawExchange (gw: TestGateway, head: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('end', () => { socket.destroy(); resolve(Buffer.concat(chunks)) })
    socket.write(head)
  })
}

async function gateway (t: Test, url: string, plugins = '{}'): Promise<TestGateway> {
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up, plugins: ${plugins} }
`)
  t.teardown(() => gw.close())
  return gw
}

t.test('header value bytes, UTF-8 or not, pass through unchanged both ways', async t => {
  const up = await rawUpstream(t, Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n'), fields, Buffer.from('\r\nok')]))
  const gw = await gateway(t, up.url)
  for (const body of ['', 'hi']) {
    const res = await rawExchange(gw, Buffer.concat([Buffer.from(`POST / HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\nContent-Length: ${body.length}\r\n`), fields, Buffer.from(`\r\n${body}`)]))
    t.match(res.toString('latin1'), /^HTTP\/1\.1 200 /)
    const sent = up.heads.at(-1) as Buffer
    t.same([valueOf(sent, 'x-utf8'), valueOf(sent, 'x-ff')], [UTF8, NOT_UTF8], `to the upstream (body ${JSON.stringify(body)})`)
    t.same([valueOf(res, 'x-utf8'), valueOf(res, 'x-ff')], [UTF8, NOT_UTF8], 'to the client')
  }
})

t.test("an upgrade's 101: the upstream's header bytes reach the client unchanged", async t => {
  const up = await rawUpstream(t, Buffer.concat([Buffer.from('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n'), fields, Buffer.from('\r\n')]))
  const gw = await gateway(t, up.url)
  const res = await rawExchange(gw, Buffer.concat([Buffer.from('GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
    'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'), fields, Buffer.from('\r\n')]))
  t.match(res.toString('latin1'), /^HTTP\/1\.1 101 /)
  t.same([valueOf(up.heads[0] as Buffer, 'x-utf8'), valueOf(up.heads[0] as Buffer, 'x-ff')], [UTF8, NOT_UTF8], 'to the upstream')
  t.same([valueOf(res, 'x-utf8'), valueOf(res, 'x-ff')], [UTF8, NOT_UTF8], 'to the client')
})

t.test("a gateway answer with a text body (an upstream error): header bytes taken from the client are written back unchanged", async t => {
  // cors echoes the Origin a pattern allows on every answer, the gateway's 502 (a JSON string body) too.
  const gw = await gateway(t, `http://127.0.0.1:${await deadPort()}`, '{ cors: { origins: ["/^.*$/"] } }')
  const origin = Buffer.concat([Buffer.from('http://'), UTF8, NOT_UTF8, Buffer.from('.test')])
  const res = await rawExchange(gw, Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\nOrigin: '), origin, Buffer.from('\r\n\r\n')]))
  t.match(res.toString('latin1'), /^HTTP\/1\.1 502 /)
  t.same(valueOf(res, 'access-control-allow-origin'), origin)
})
