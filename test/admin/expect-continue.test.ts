import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startGateway } from '../helpers/gateway.ts'

/**
 * Sends a request head with `Expect: 100-continue`; once the server has answered something, sends
 * `body` (if any) and reads until the server closes: everything it said, in order.
 */
async function expecting (port: number, contentLength: number, body?: string, authorization?: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  const closed = once(socket, 'close')
  let text = ''
  socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
  socket.write(['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', 'Content-Type: application/json', `Content-Length: ${contentLength}`,
    'Expect: 100-continue', 'Connection: close', ...authorization === undefined ? [] : [`Authorization: ${authorization}`]].join('\r\n') + '\r\n\r\n')
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

t.test('admin: Expect 100-continue without admin.token (or with the read-only token) gets its 401/403 at once, no 100', async t => {
  const gw = await startGateway(`admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: admin-token-0123456789
  readToken: read-token-0123456789
${catchAllYaml('http://127.0.0.1:1')}`)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.adminUrl as string).port)
  t.match(await expecting(port, 100_000), /^HTTP\/1\.1 401 /, 'no token: the 401 first')
  t.match(await expecting(port, 100_000, undefined, 'Bearer read-token-0123456789'), /^HTTP\/1\.1 403 /, 'the read-only token: the 403 first')
  t.match(await expecting(port, 2, '{}', 'Bearer admin-token-0123456789'), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 [2-5]\d\d /, 'the admin token: asked for the body, then answered')
})
