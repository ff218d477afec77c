import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { createTestCa, type TestCa } from '../helpers/certs.ts'
import { waitForLog } from '../helpers/logs.ts'

// An upstream that wants a client certificate the gateway does not send: under TLS 1.3 the client's
// handshake is over before the server checks it, so undici saw only "other side closed"
// (UND_ERR_SOCKET). The server's alert is kept, and the log and the health reason say what to do.

async function mtlsUpstream (t: Test, ca: TestCa, clients: TestCa): Promise<string> {
  const leaf = ca.issue('upstream', 'IP:127.0.0.1')
  const https: Server = createServer({ cert: leaf.cert, key: leaf.key, ca: clients.cert, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (_req, res) => res.end('ok'))
  https.on('tlsClientError', () => {})
  await new Promise<void>(resolve => https.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { https.closeAllConnections(); https.close(() => resolve()) }))
  return `https://127.0.0.1:${(https.address() as AddressInfo).port}`
}

async function gateway (t: Test, url: string, tls: string) {
  const gw = await startGateway(`
upstreams:
  secure:
    targets: [ { url: "${url}" } ]
    passive: false
    tls: ${tls}
    healthCheck: { path: /health, interval: 100ms, unhealthyAfter: 1 }
routes:
  - { name: all, match: { path: /* }, upstream: secure }
`)
  t.teardown(() => gw.close())
  return gw
}

const HINT = 'the upstream may require a client certificate (tls.cert, tls.key)'

t.test('no client certificate for an upstream that requires one: the log and the health reason say so', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const clients = createTestCa('Client CA', fn => t.teardown(fn))
  const url = await mtlsUpstream(t, ca, clients)
  const gw = await gateway(t, url, `{ ca: "${ca.certFile}" }`)

  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  t.equal(res.statusCode, 502)
  const line = await waitForLog(gw.logs, { msg: `upstream TLS handshake failed: ${HINT}` })
  t.match(line, { level: 40, target: url, err: { code: 'UND_ERR_SOCKET', message: /other side closed \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\)/ } })
  t.notOk(gw.logs.some(l => l.msg === 'upstream request failed'), 'not a bare "upstream request failed"')

  const unhealthy = await waitForLog(gw.logs, { msg: 'target unhealthy' })
  t.match(unhealthy, { reason: /^UND_ERR_SOCKET: other side closed \(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\): the upstream may require a client certificate \(tls\.cert, tls\.key\)$/ })
})

// Node's server checks a certificate it was sent after the handshake and closes without an alert:
// nothing tells that from any other closed connection, and the hint is not given.
t.test('a client certificate the upstream does not trust: no hint of a missing one', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const clients = createTestCa('Client CA', fn => t.teardown(fn))
  const stranger = createTestCa('Stranger CA', fn => t.teardown(fn)).issue('portcullis-gateway', 'DNS:gateway', { client: true })
  const url = await mtlsUpstream(t, ca, clients)
  const gw = await gateway(t, url, `{ ca: "${ca.certFile}", cert: "${stranger.certFile}", key: "${stranger.keyFile}" }`)

  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  t.equal(res.statusCode, 502)
  t.match(await waitForLog(gw.logs, { msg: 'upstream request failed' }), { err: { code: 'UND_ERR_SOCKET' } })
  t.ok(await waitForLog(gw.logs, { msg: 'target unhealthy' }))
  t.notOk(gw.logs.some(l => JSON.stringify(l).includes(HINT)), 'no hint of a missing certificate')
})
