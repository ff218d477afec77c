import t from 'tap'
import { connect } from 'node:net'
import { once } from 'node:events'
import { catchAllGateway, catchAllYaml } from './helpers/catch-all.ts'
import { startGateway } from './helpers/gateway.ts'
import { waitForLog } from './helpers/logs.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'
import { startUpstream } from './helpers/upstream.ts'

// Requests refused before any route could take them, by Node's parser or by Fastify's router:
// the same JSON error body and request id as every gateway error, and an access-log line.
t.test('malformed requests: our JSON errors with a request id, and a log line each', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await catchAllGateway(t, up.url)
  const port = Number(new URL(gw.url).port)
  const cases = [
    { name: 'request target without a leading slash', lines: ['GET users/7 HTTP/1.1', 'Host: x'], status: 400, error: 'bad_request' },
    { name: 'Content-Length and Transfer-Encoding both', lines: ['POST /x HTTP/1.1', 'Host: x', 'Content-Length: 3', 'Transfer-Encoding: chunked'], status: 400, error: 'bad_request' },
    { name: 'headers over the size limit', lines: ['GET /x HTTP/1.1', 'Host: x', `X-Big: ${'a'.repeat(20_000)}`], status: 431, error: 'headers_too_large' },
    { name: 'a malformed escape', lines: ['GET /users/%zz HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path' }
  ]
  for (const c of cases) {
    const res = await rawRequest(port, c.lines)
    t.equal(res.status, c.status, c.name)
    const id = headerValues(res, 'x-request-id')[0]
    t.match(JSON.parse(res.body), { error: c.error, message: String, requestId: id }, `${c.name}: our error body`)
    t.ok(gw.logs.some(l => l.msg === 'request rejected' && l.requestId === id && l.status === c.status), `${c.name}: logged`)
  }
})

t.test('request headers that take too long: 408 request_timeout on the socket, a log line, the connection closed', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  // Node's defaults are 60 s, checked every 30 s (README): the same path, shortened.
  const gw = await startGateway(catchAllYaml(up.url), { start: { headersTimeout: { ms: 300, checkEveryMs: 50 } } })
  t.teardown(() => gw.close())
  const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  let received = ''
  socket.on('data', (c: Buffer) => { received += c.toString('latin1') })
  const sentAt = performance.now()
  socket.write('GET /x HTTP/1.1\r\nHost: gateway.test\r\n') // and never the blank line that ends the headers
  await once(socket, 'end')
  const ms = performance.now() - sentAt
  t.ok(ms >= 290, `answered after the limit (${Math.round(ms)} ms)`)
  t.match(received, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  const id = /\r\nx-request-id: ([^\r]+)\r\n/.exec(received)?.[1]
  t.same(JSON.parse(received.slice(received.indexOf('\r\n\r\n') + 4)),
    { error: 'request_timeout', message: 'the request headers took too long to arrive', requestId: id })
  t.match(await waitForLog(gw.logs, { msg: 'request rejected', requestId: id }), { status: 408 })
})
