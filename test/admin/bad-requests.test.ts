import t, { type Test } from 'tap'
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

/** The admin API's error format: exactly { error, message }, as JSON. */
function adminError (t: Test, res: RawResponse, status: number, error: string): void {
  t.equal(res.status, status)
  t.match(res.headers.find(([n]) => n === 'content-type')?.[1], /^application\/json/)
  const body = JSON.parse(res.body) as Record<string, unknown>
  t.same(Object.keys(body).sort(), ['error', 'message'], `only error and message: ${res.body}`)
  t.equal(body.error, error)
}

t.test('requests rejected before any endpoint runs get the admin API\'s JSON errors', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: all, match: { path: "/*" }, upstream: a }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const port = Number(new URL(gw.adminUrl as string).port)
  const send = (lines: string[]) => rawRequest(port, lines)

  const badUrl = await send(['GET /%zz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])
  adminError(t, badUrl, 400, 'bad_request')
  t.match(badUrl.body, /%zz/, 'the message says what was wrong')

  // Rejected by Node's HTTP parser: no request object exists, the answer is written on the socket.
  adminError(t, await send(['GET /config HTTP/1.1', 'Host: 127.0.0.1', 'Not a header', 'Connection: close']), 400, 'bad_request')
  adminError(t, await send(['GET /config HTTP/1.1', 'Host: 127.0.0.1', `X-Big: ${'x'.repeat(20_000)}`, 'Connection: close']), 431, 'headers_too_large')

  // Bodies Fastify refuses before the endpoint: each by a code of its own.
  const body = (type: string, text: string, length = Buffer.byteLength(text)) =>
    rawRequest(port, ['POST /config/reload HTTP/1.1', 'Host: 127.0.0.1', `Content-Type: ${type}`, `Content-Length: ${length}`, 'Connection: close'], text)
  adminError(t, await body('application/json', '{bad'), 400, 'bad_request')
  // Refused by its Content-Length, before a byte of it is read.
  adminError(t, await body('application/json', '', 2_000_000), 413, 'body_too_large')
  adminError(t, await body('application/x-www-form-urlencoded', 'a=1'), 415, 'unsupported_media_type')

  // HTTP/1.1 without Host (RFC 9112 3.2): 400 in JSON, as on the gateway's port, not Node's bare one. HTTP/1.0 may omit it.
  adminError(t, await send(['GET /healthz HTTP/1.1', 'Connection: close']), 400, 'bad_host')
  t.equal((await send(['GET /healthz HTTP/1.0'])).status, 200, 'HTTP/1.0 without Host')

  // CONNECT (Node hands the socket over): answered, as on the gateway's port, not just closed.
  adminError(t, await send(['CONNECT a.example:443 HTTP/1.1', 'Host: a.example:443']), 501, 'not_implemented')

  // The listener still serves well-formed requests.
  const ok = await send(['GET /healthz HTTP/1.1', 'Host: 127.0.0.1', 'Connection: close'])
  t.equal(ok.status, 200)
})
