import t from 'tap'
import { createServer, type Server } from 'node:https'
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { startGateway } from '../helpers/gateway.ts'
import { createTestCa } from '../helpers/certs.ts'
import { until } from '../helpers/wait.ts'

const upstreamsYaml = (url: string, ca: string, healthCheck: string) => `
upstreams:
  secure:
    targets: [ { url: "${url}" } ]
    tls: { ca: "${ca}" }
    healthCheck: ${healthCheck}
routes:
  - { name: all, match: { path: /* }, upstream: secure }
`

t.test('a target whose certificate has the wrong name goes unhealthy after unhealthyAfter checks, and healthy again once it is fixed', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const wrong = ca.issue('elsewhere', 'DNS:elsewhere')
  const right = ca.issue('upstream', 'IP:127.0.0.1')
  let connections = 0
  const https: Server = createServer({ cert: wrong.cert, key: wrong.key }, (req, res) => res.end('ok'))
  https.on('connection', () => connections++)
  await new Promise<void>(resolve => https.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { https.closeAllConnections(); https.close(() => resolve()) }))
  const url = `https://127.0.0.1:${(https.address() as AddressInfo).port}`
  // undici 7 never connects again a Client that met ERR_TLS_CERT_ALTNAME_INVALID: the second check hung for good.
  const gw = await startGateway(upstreamsYaml(url, ca.certFile, '{ path: /health, interval: 500ms, timeout: 400ms }'))
  t.teardown(() => gw.close())
  const healthy = () => gw.gateway.runtime.upstreamSnapshots()[0]?.targets[0]?.healthy
  const unhealthy = () => gw.logs.find(l => l.msg === 'target unhealthy')
  t.ok(await until(() => unhealthy() !== undefined, 15_000), 'found unhealthy')
  t.equal(healthy(), false)
  t.ok(connections >= 3, `after the default 3 failed checks (${connections} connections)`)
  t.match(unhealthy(), { target: url, reason: /^ERR_TLS_CERT_ALTNAME_INVALID: / }, 'logged with why')
  https.setSecureContext({ cert: right.cert, key: right.key })
  t.ok(await until(() => gw.logs.some(l => l.msg === 'target healthy'), 15_000), 'healthy again once its certificate is fixed')
  t.equal(healthy(), true)
})

t.test('a TLS handshake the target never answers fails the check at its timeout, not undici\'s connect timeout (10 s)', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const held = new Set<Socket>()
  const closed: number[] = []
  // Takes the connection, reads the ClientHello (so that its end is seen) and says nothing: no ServerHello.
  const mute = createTcpServer(socket => {
    held.add(socket)
    socket.resume()
    socket.on('close', () => { held.delete(socket); closed.push(performance.now()) })
  })
  await new Promise<void>(resolve => mute.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { for (const s of held) s.destroy(); mute.close(() => resolve()) }))
  const url = `https://127.0.0.1:${(mute.address() as AddressInfo).port}`
  const gw = await startGateway(upstreamsYaml(url, ca.certFile, '{ path: /health, interval: 1s, timeout: 500ms, unhealthyAfter: 1 }'))
  t.teardown(() => gw.close())
  // From the start's end (a loaded machine can stall it by seconds, the check begun): undici's 10 s
  // would end over 5 s later, unless the start stalled over 5 s.
  const start = performance.now()
  const unhealthy = () => gw.logs.find(l => l.msg === 'target unhealthy')
  t.ok(await until(() => unhealthy() !== undefined, 15_000), 'found unhealthy')
  const took = performance.now() - start
  t.ok(took < 5_000, `within the check's timeout, give or take a busy machine (${Math.round(took)} ms)`)
  t.match(unhealthy(), { target: url, reason: /timeout/i })
  t.ok(await until(() => closed.length > 0, 5_000), 'the connection is given up')
  t.ok((closed[0] as number) - start < 5_000, `at the timeout (${Math.round((closed[0] as number) - start)} ms)`)
})
