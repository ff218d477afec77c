import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startGateway } from '../helpers/gateway.ts'

/**
 * Sends a request head with `Expect: 100-continue`; once the server has answered something, sends
 * `body` (if any) and reads until the server closes: everything it said, in order.
 */
async function expecting (port: number, contentLength: number, body?: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  const closed = once(socket, 'close')
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  socket.write(['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${contentLength}`,
    'Expect: 100-continue', 'Connection: close'].join('\r\n') + '\r\n\r\n')
  await once(socket, 'data')
  if (body !== undefined) socket.write(body)
  await closed
  return text
}

t.test('admin: Expect 100-continue with a Content-Length past the limit gets 413 body_too_large at once, no 100 (the client uploaded 1 MB first)', async t => {
  const gw = await startGateway(catchAllYaml('http://127.0.0.1:1'), { admin: true })
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.adminUrl as string).port)

  const refused = await expecting(port, 1_100_000)
  t.match(refused, /^HTTP\/1\.1 413 /, 'the 413 is the first thing said: no 100 Continue')
  const body = JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>
  t.same(body, { error: 'body_too_large', message: 'the request body is larger than the admin API takes (1048576 bytes)' }, 'in the admin API\'s words, not Fastify\'s')

  const taken = await expecting(port, 2, '{}')
  t.match(taken, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 [2-5]\d\d /, 'a body within the limit is still asked for')
  t.notMatch(taken, / 413 /)
})
