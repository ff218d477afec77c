import t from 'tap'
import { connect } from 'node:net'
import { request } from 'undici'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'
import { headerValues, rawRequest, type RawResponse } from '../helpers/raw-http.ts'

const TOKEN = 'admin-token-0123456789abcdef'

/** The raw answer to CONNECT, which the server hands over with the socket. */
function connectAnswer (port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.on('data', (c: Buffer) => { text += c.toString('latin1') })
    socket.on('error', reject)
    socket.on('close', () => { resolve(text) })
    socket.write('CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n')
  })
}

// Admin answers (a /config with its hash, a reload's result) said nothing of caching.
t.test('every admin answer says Cache-Control: no-store and X-Content-Type-Options: nosniff, errors and plugin endpoints\' too', async t => {
  const a = await namedUpstream('a')
  const yaml = gatewayYaml({ a: [a.url] }, '  - { name: cached, match: { path: "/*" }, upstream: a, plugins: { cache: {} } }')
    .replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', `admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${TOKEN}"`)
  const cf = await configFile(yaml)
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const port = Number(new URL(gw.adminUrl as string).port)
  const admin = `Authorization: Bearer ${TOKEN}`
  const raw = (line: string, headers: string[] = [admin], body = ''): Promise<RawResponse> =>
    rawRequest(port, [line, 'Host: 127.0.0.1', ...headers, 'Connection: close'], body)

  const answers: Array<[string, number, RawResponse]> = [
    ['GET /config', 200, await raw('GET /config HTTP/1.1')],
    ['HEAD /healthz, open', 200, await raw('HEAD /healthz HTTP/1.1', [])],
    ['GET /metrics', 200, await raw('GET /metrics HTTP/1.1')],
    ['POST /config/reload', 200, await raw('POST /config/reload HTTP/1.1')],
    ['a plugin endpoint', 200, await raw('POST /plugins/cache/purge HTTP/1.1', [admin, 'Content-Type: application/json', 'Content-Length: 13'], '{"all": true}')],
    ['a plugin endpoint\'s 405', 405, await raw('DELETE /plugins/cache/purge HTTP/1.1')],
    ['no token', 401, await raw('GET /config HTTP/1.1', [])],
    ['a page\'s', 403, await raw('GET /config HTTP/1.1', [admin, 'Origin: https://evil.example'])],
    ['no endpoint', 404, await raw('GET /nowhere HTTP/1.1')],
    ['a wrong method', 405, await raw('PUT /config/reload HTTP/1.1')],
    ['a malformed URL (Fastify\'s)', 400, await raw('GET /%zz HTTP/1.1')],
    ['bad JSON', 400, await raw('POST /config/reload HTTP/1.1', [admin, 'Content-Type: application/json', 'Content-Length: 3'], '{x}')],
    ['Node\'s parser', 400, await raw('GET /config HTTP/1.1', [admin, 'Bad Header: x'])]
  ]
  for (const [what, status, res] of answers) {
    t.equal(res.status, status, what)
    t.same(headerValues(res, 'cache-control'), ['no-store'], `${what}: no-store`)
    t.same(headerValues(res, 'x-content-type-options'), ['nosniff'], `${what}: nosniff`)
  }
  const tunnel = await connectAnswer(port)
  t.match(tunnel, /^HTTP\/1\.1 501 /, 'CONNECT')
  t.match(tunnel, /\r\ncache-control: no-store\r\n/i)
  t.match(tunnel, /\r\nx-content-type-options: nosniff\r\n/i)

  // A client that keeps the connection gets them on each answer.
  const kept = await request(`${gw.adminUrl as string}/routes`, { headers: { authorization: `Bearer ${TOKEN}` } })
  await kept.body.dump()
  t.equal(kept.headers['cache-control'], 'no-store')
})
