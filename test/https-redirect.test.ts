import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { createTestCa } from './helpers/certs.ts'
import { tlsGateway } from './helpers/tls-gateway.ts'
import { headerValues, rawRequest } from './helpers/raw-http.ts'

const REDIRECT = 'redirectHttp: { listen: { host: 127.0.0.1, port: 0 } }'

t.test('server.tls.redirectHttp: 308 to HTTPS, same path and query, the Host\'s name with the HTTPS port; bad Host gets 400', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('server', 'DNS:api.example.com')
  const { gw, file } = await tlsGateway(t, ca, `{ certificates: [ { cert: server.pem, key: server.key } ], ${REDIRECT} }`)
  t.match(gw.redirectUrl, /^http:\/\/127\.0\.0\.1:\d+$/)
  const port = Number(new URL(gw.redirectUrl as string).port)
  const httpsPort = new URL(gw.url).port
  const send = async (lines: string[], body = '') => {
    const res = await rawRequest(port, [...lines, 'Connection: close'], body)
    return { status: res.status, location: headerValues(res, 'location')[0], body: res.body }
  }

  t.same(await send(['GET /a/b%20c/?x=1&y=%2F&z HTTP/1.1', 'Host: api.example.com']),
    { status: 308, location: `https://api.example.com:${httpsPort}/a/b%20c/?x=1&y=%2F&z`, body: '' })
  t.same(await send(['GET / HTTP/1.1', 'Host: API.example.com:8080']),
    { status: 308, location: `https://API.example.com:${httpsPort}/`, body: '' }, 'the port in Host is replaced')
  t.same(await send(['POST /orders HTTP/1.1', 'Host: api.example.com', 'Content-Length: 5'], 'hello'),
    { status: 308, location: `https://api.example.com:${httpsPort}/orders`, body: '' }, 'every method (308 keeps it)')
  t.same(await send(['GET /v6 HTTP/1.1', 'Host: [::1]:80']), { status: 308, location: `https://[::1]:${httpsPort}/v6`, body: '' })
  t.same(await send(['GET /ip HTTP/1.1', 'Host: 10.0.0.1']), { status: 308, location: `https://10.0.0.1:${httpsPort}/ip`, body: '' })

  const refused = async (lines: string[]) => {
    const res = await send(lines)
    return { status: res.status, location: res.location, error: (JSON.parse(res.body) as { error: string }).error }
  }
  const badHost = { status: 400, location: undefined, error: 'bad_host' }
  t.same(await refused(['GET / HTTP/1.0']), badHost, 'no Host (HTTP/1.0)')
  t.same(await refused(['GET / HTTP/1.1', 'Host: evil.example/@api.example.com']), badHost, 'a Host that is not a name')
  t.same(await refused(['GET / HTTP/1.1', 'Host: user@api.example.com']), badHost)
  t.same(await refused(['GET / HTTP/1.1', 'Host: .example']), badHost)
  t.same(await refused(['GET / HTTP/1.1', 'Host: api.example.com', 'Host: evil.example']), badHost, 'two Host fields')
  t.same(await refused(['GET http://api.example.com/x HTTP/1.1', 'Host: api.example.com']), { status: 400, location: undefined, error: 'bad_request' }, 'a target that is not a path')

  // httpsPort (say, behind a port mapping) follows a reload; 443 is left out of the URL.
  writeFileSync(file, readFileSync(file, 'utf8').replace(REDIRECT, 'redirectHttp: { listen: { host: 127.0.0.1, port: 0 }, httpsPort: 443 }'))
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  t.same(await send(['GET /a?b HTTP/1.1', 'Host: api.example.com:80']), { status: 308, location: 'https://api.example.com/a?b', body: '' })

  // Its address is bound at start.
  writeFileSync(file, readFileSync(file, 'utf8').replace('redirectHttp: { listen: { host: 127.0.0.1, port: 0 }', `redirectHttp: { listen: { host: 127.0.0.1, port: ${port + 1} }`))
  const frozen = await gw.reloader.reload('admin')
  t.match(frozen.issues, [{ path: 'server.tls.redirectHttp.listen', message: `HTTPS redirect listener cannot change on reload (restart the gateway to apply it); still listening on 127.0.0.1:0` }])

  await gw.close()
  await t.rejects(send(['GET / HTTP/1.1', 'Host: api.example.com']), { code: 'ECONNREFUSED' }, 'closed with the gateway')
})
