import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { Client } from 'undici'
import { adminPort } from '../helpers/admin-port.ts'
import { ADMIN_LIMITS } from '../../src/server/admin-server.ts'

const TOKEN = 'admin-token-0123456789abcdef'

/** The statuses of the answers to `count` requests sent at once on one connection, read until the server closes it. */
function pipelined (port: number, request: string, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1')
      const statuses: number[] = []
      // Each answer framed by its Content-Length.
      for (let at = 0; at < text.length;) {
        const end = text.indexOf('\r\n\r\n', at)
        if (end === -1) break
        const head = text.slice(at, end)
        statuses.push(Number(head.split(' ')[1]))
        at = end + 4 + Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0)
      }
      resolve(statuses)
    })
    // The last says Connection: close, so that a server answering them all ends the connection too.
    socket.write(request.repeat(count - 1) + request.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'))
  })
}

// 5,000 pipelined GET /metrics on one connection that read none: each answered, each answer held
// until the client read (RSS +140 MB), as many as a read of the socket brought in.
t.test('a connection pipelining past the bound gets the answers before it, one 429, and its end: no more answers are made', async t => {
  const { gw, port } = await adminPort(t, TOKEN)
  const metrics = `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`
  const depth = ADMIN_LIMITS.pipelined
  const statuses = await pipelined(port, metrics, 1_000)
  t.same(statuses, [...Array<number>(depth).fill(200), 429], `${depth} answered, then a 429 and the connection closed`)
  t.match(gw.logs.find(l => l.msg === 'admin request refused'), { method: 'GET', path: '/metrics', status: 429, error: 'too_many_requests' }, 'the refusal logged')

  // Up to the bound, pipelining is answered in full.
  t.same(await pipelined(port, metrics, depth), Array<number>(depth).fill(200), `${depth} pipelined: each answered`)
  // One at a time, a kept connection serves any number: an answer sent counts no more.
  const client = new Client(gw.adminUrl as string)
  t.teardown(() => client.close())
  const sequential: number[] = []
  for (let i = 0; i < depth * 3; i++) {
    const res = await client.request({ method: 'GET', path: '/healthz' })
    await res.body.dump()
    sequential.push(res.statusCode)
  }
  t.same(sequential, Array<number>(depth * 3).fill(200))
})

// 40 pipelined GET /%zz got 40 x 400 and no 429: Fastify answers a malformed URL itself, before any hook.
t.test('requests Fastify answers itself count too: past the bound, a malformed URL gets the 429', async t => {
  const { gw, port } = await adminPort(t, TOKEN)
  const depth = ADMIN_LIMITS.pipelined
  t.same(await pipelined(port, 'GET /%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 40), [...Array<number>(depth).fill(400), 429])
  t.match(gw.logs.find(l => l.msg === 'admin request refused'), { path: '/%zz', status: 429, error: 'too_many_requests' }, 'the refusal logged')
})

// The 17th pipelined request saying Expect: 100-continue was sent 100 Continue, then its 429: its client uploaded the body for nothing.
t.test('a request past the bound that expects 100-continue gets its 429 and no 100 Continue', async t => {
  const { port } = await adminPort(t, TOKEN)
  const depth = ADMIN_LIMITS.pipelined
  const socket = connect(port, '127.0.0.1')
  let text = ''
  socket.setEncoding('latin1')
  socket.on('data', (c: string) => { text += c })
  const closed = once(socket, 'close')
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(depth) + ['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', `Authorization: Bearer ${TOKEN}`,
    'Content-Type: application/json', 'Content-Length: 2', 'Expect: 100-continue'].join('\r\n') + '\r\n\r\n')
  await closed
  t.same(text.match(/HTTP\/1\.1 \d+/g), [...Array<string>(depth).fill('HTTP/1.1 200'), 'HTTP/1.1 429'], 'the answers before it, then its 429: no 100 Continue')
})
