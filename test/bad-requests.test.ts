import t from 'tap'
import { catchAllGateway } from './helpers/catch-all.ts'
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
    { name: 'a malformed escape', lines: ['GET /users/%zz HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path' },
    // Decoded for routing, such bytes are no text: refused, and the message says why.
    { name: 'an escape that is not UTF-8 (Latin-1 é)', lines: ['GET /caf%E9 HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path', message: /do not decode as UTF-8/ },
    { name: 'a lone continuation byte', lines: ['GET /a%80 HTTP/1.1', 'Host: x', 'Connection: close'], status: 400, error: 'bad_path', message: /do not decode as UTF-8/ }
  ]
  for (const c of cases) {
    const res = await rawRequest(port, c.lines)
    t.equal(res.status, c.status, c.name)
    const id = headerValues(res, 'x-request-id')[0]
    t.match(JSON.parse(res.body), { error: c.error, message: c.message ?? String, requestId: id }, `${c.name}: our error body`)
    t.ok(gw.logs.some(l => l.msg === 'request rejected' && l.requestId === id && l.status === c.status), `${c.name}: logged`)
  }
})
