import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { echo } from './helpers/upstream.ts'
import { catchAllGateway } from './helpers/catch-all.ts'

type Echoed = { method: string, headers: Record<string, string | undefined>, body: string }

// curl sends `Expect: 100-continue` with every body over 1 KiB, then waits for the 100 before sending it.
t.test('Expect: 100-continue: the client gets its 100, then the response; the upstream never sees Expect', async t => {
  const gw = await catchAllGateway(t, echo)
  const body = 'b'.repeat(2_000)
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  socket.write(['POST /upload HTTP/1.1', 'Host: gateway.test', 'Content-Type: text/plain', `Content-Length: ${body.length}`,
    'Expect: 100-continue', 'Connection: close', '', ''].join('\r\n'))
  while (!received.includes('\r\n\r\n')) await once(socket, 'data')
  t.equal(received, 'HTTP/1.1 100 Continue\r\n\r\n', 'the interim answer, before any of the body was sent')
  socket.write(body)
  await once(socket, 'end')
  const final = received.slice('HTTP/1.1 100 Continue\r\n\r\n'.length)
  t.match(final, /^HTTP\/1\.1 200 OK\r\n/, 'then the upstream\'s answer')
  const seen = JSON.parse(final.slice(final.indexOf('\r\n\r\n') + 4)) as Echoed
  t.equal(seen.method, 'POST')
  t.equal(seen.headers.expect, undefined, 'Expect is for this hop: not forwarded')
  t.equal(seen.headers['content-length'], '2000')
  t.equal(seen.body, body, 'the whole body reached the upstream')
})
