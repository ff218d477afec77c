import t, { type Test } from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { parseConfig } from '../src/config/load.ts'
import { ConfigError, formatIssue } from '../src/config/config-error.ts'
import { createTestCa, type Issued } from './helpers/certs.ts'
import { handshake, liveCertificate, presented, tlsGateway } from './helpers/tls-gateway.ts'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'
import { catchAllYaml } from './helpers/catch-all.ts'

t.test('HTTPS with SNI: exact and wildcard names, the first certificate by default; X-Forwarded-Proto https', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('default', 'DNS:default.example')
  ca.issue('api', 'DNS:api.example.com')
  ca.issue('wild', 'DNS:*.apps.example.com')
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: default.pem, key: default.key }, { cert: api.pem, key: api.key }, { cert: wild.pem, key: wild.key } ] }')
  t.match(gw.url, /^https:\/\//)
  const cases: Array<[string | undefined, string]> = [
    ['api.example.com', 'api'], ['API.Example.com', 'api'], ['one.apps.example.com', 'wild'],
    ['deep.one.apps.example.com', 'default'], ['apps.example.com', 'default'], ['other.example', 'default'], [undefined, 'default']
  ]
  for (const [name, cn] of cases) {
    t.equal(await presented(gw, ca, name), cn, `SNI ${name ?? '(none)'}`)
  }
  const agent = new Agent({ connect: { ca: ca.cert, servername: 'api.example.com' } })
  t.teardown(() => agent.close())
  const res = await request(`${gw.url}/x`, { dispatcher: agent, headers: { host: 'api.example.com' } })
  const seen = await res.body.json() as { headers: Record<string, string> }
  t.equal(res.statusCode, 200)
  t.equal(seen.headers['x-forwarded-proto'], 'https')
  t.equal(seen.headers['x-client-cn'], '-', 'no client certificate')
})

t.test('a TLS handshake that stalls is closed after clientTimeouts.headers, one that fails (plain HTTP) at once; neither is a request', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const leaf = ca.issue('gateway', 'DNS:api.example.com')
  const gw = await startGateway(catchAllYaml(up.url, {
    server: `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  clientTimeouts: { headers: 300ms }\n  tls: { certificates: [ { cert: "${leaf.certFile}", key: "${leaf.keyFile}" } ] }`
  }))
  t.teardown(() => gw.close())
  /** Milliseconds until the gateway closes a connection that sends `bytes` (or nothing), and never completes a handshake. */
  const closedAfter = async (bytes?: string): Promise<number> => {
    const socket = connect(Number(new URL(gw.url).port), '127.0.0.1')
    socket.on('error', () => {}).resume()
    await once(socket, 'connect')
    if (bytes !== undefined) socket.write(bytes)
    const started = performance.now()
    await once(socket, 'close')
    return performance.now() - started
  }
  const stalled = await closedAfter()
  t.ok(stalled > 250 && stalled < 5_000, `a client that sends nothing is closed after clientTimeouts.headers (${Math.round(stalled)} ms), not Node's 120s`)
  t.ok(await closedAfter('GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n') < 5_000, 'plain HTTP to the TLS port is closed')
  t.match(await gw.metrics.registry.metrics(), /portcullis_timeouts_total\{kind="client_handshake"\} 1/)
  t.notOk(gw.logs.some(l => l.msg === 'request rejected'), 'no request was made: none is logged')
  const agent = new Agent({ connect: { ca: ca.cert, servername: 'api.example.com' } })
  t.teardown(() => agent.close())
  t.equal((await request(`${gw.url}/x`, { dispatcher: agent })).statusCode, 200, 'a client that completes its handshake is served')
})

t.test('certificates reload on config reload: new handshakes get the new one, open connections continue', async t => {
  const { ca, dir, first, second, install } = liveCertificate(t)
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: live.pem, key: live.key } ] }')
  const agent = new Agent({ connections: 1, connect: { ca: ca.cert, servername: 'api.example.com' } })
  t.teardown(() => agent.close())
  const get = async () => { const r = await request(`${gw.url}/x`, { dispatcher: agent }); await r.body.dump(); return r.statusCode }
  t.equal(await get(), 200)
  const before = await handshake(gw, ca, 'api.example.com')
  t.equal(before.cn, 'first')

  install(second)
  const outcome = await gw.reloader.reload('admin')
  t.match(outcome, { result: 'success' })
  t.equal(await presented(gw, ca, 'api.example.com'), 'second', 'a new handshake with SNI gets the new certificate')
  t.equal(await presented(gw, ca), 'second', 'and without SNI (the listener\'s default)')
  t.equal(await get(), 200, 'the open keep-alive connection still serves')
  t.ok(!before.socket.destroyed, 'the connection opened before the reload is still open')
  before.socket.destroy()

  // A key that does not fit: the reload fails at its key, the current certificate keeps serving.
  copyFileSync(first.keyFile, join(dir, 'live.key'))
  const failed = await gw.reloader.reload('admin')
  t.match(failed, { result: 'invalid' })
  t.match(failed.issues, [{ path: 'server.tls.certificates[0].key', line: 3, message: /^does not fit the certificate/ }])
  t.equal(await presented(gw, ca, 'api.example.com'), 'second')
})

/** A gateway asking for client certificates from "Client CA"; a client of it, and one of another CA. */
async function mtlsGateway (t: Test, mode: 'require' | 'request') {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const clients = createTestCa('Client CA', fn => t.teardown(fn))
  const stranger = createTestCa('Stranger CA', fn => t.teardown(fn))
  ca.issue('server', 'DNS:api.example.com')
  const billing = clients.issue('billing', 'DNS:billing', { client: true })
  const intruder = stranger.issue('intruder', 'DNS:intruder', { client: true })
  copyFileSync(clients.certFile, join(ca.certFile, '..', 'clients.pem'))
  const { gw } = await tlsGateway(t, ca, `{ certificates: [ { cert: server.pem, key: server.key } ], clientAuth: { ca: clients.pem, mode: ${mode} } }`)
  return { ca, gw, billing, intruder }
}

t.test('mTLS: require refuses clients without a verified certificate; plugins see the subject', async t => {
  const { ca, gw, billing, intruder } = await mtlsGateway(t, 'require')
  const call = async (client?: Issued) => {
    const agent = new Agent({ connect: { ca: ca.cert, servername: 'api.example.com', cert: client?.cert, key: client?.key } })
    try {
      const res = await request(`${gw.url}/x`, { dispatcher: agent })
      return ((await res.body.json()) as { headers: Record<string, string> }).headers['x-client-cn']
    } catch (err) {
      return `refused: ${(err as Error).message}`
    } finally {
      await agent.close()
    }
  }
  t.equal(await call(billing), 'billing', 'the verified subject reaches the plugin')
  t.match(await call(), /^refused/, 'no certificate')
  t.match(await call(intruder), /^refused/, 'a certificate from another CA')
})

t.test('mTLS request mode: the connection is accepted, the subject only when it verifies', async t => {
  const { ca, gw, billing, intruder } = await mtlsGateway(t, 'request')
  const call = async (client?: Issued) => {
    const agent = new Agent({ connect: { ca: ca.cert, servername: 'api.example.com', cert: client?.cert, key: client?.key } })
    t.teardown(() => agent.close())
    const res = await request(`${gw.url}/x`, { dispatcher: agent })
    return ((await res.body.json()) as { headers: Record<string, string> }).headers['x-client-cn']
  }
  t.equal(await call(billing), 'billing')
  t.equal(await call(), '-')
  t.equal(await call(intruder), '-', 'an unverified certificate is not shown to plugins')
})

t.test('bad certificate files are config errors at their key', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const a = ca.issue('a', 'DNS:a.example')
  ca.issue('b', 'DNS:b.example')
  const text = (tls: string) => `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  tls: ${tls}\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes: []\n`
  const issues = async (tls: string) => {
    try {
      await parseConfig(text(tls), join(ca.certFile, '..', 'gw.yaml'), {})
      return ['accepted']
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(formatIssue)
      throw err
    }
  }
  t.match(await issues('{ certificates: [ { cert: a.pem, key: b.key } ] }'), [/\/gw\.yaml:3:\d+ server\.tls\.certificates\[0\]\.key: does not fit the certificate/])
  t.match(await issues('{ certificates: [ { cert: nope.pem, key: a.key } ] }'), [/server\.tls\.certificates\[0\]\.cert: cannot read "nope\.pem"/])
  t.match(await issues(`{ certificates: [ { cert: "${a.keyFile}", key: a.key } ] }`), [/server\.tls\.certificates\[0\]\.cert: not a PEM certificate/])
  t.match(await issues('{ certificates: [ { cert: a.pem, key: a.key } ], minVersion: TLSv1.0 }'), [/server\.tls\.minVersion: must be TLSv1\.2 or TLSv1\.3/])
  t.same(await issues('{ certificates: [ { cert: a.pem, key: a.key } ], minVersion: TLSv1.3 }'), ['accepted'])
  // A client CA file must be PEM certificates, and only that: OpenSSL itself would take any file.
  const dir = join(ca.certFile, '..')
  writeFileSync(join(dir, 'empty.pem'), '')
  writeFileSync(join(dir, 'hello.pem'), 'hello world\n')
  writeFileSync(join(dir, 'mixed.pem'), ca.cert + a.key)
  writeFileSync(join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n')
  const clientCa = (file: string) => issues(`{ certificates: [ { cert: a.pem, key: a.key } ], clientAuth: { ca: ${file}, mode: require } }`)
  t.match(await clientCa('empty.pem'), [/\/gw\.yaml:3:\d+ server\.tls\.clientAuth\.ca: not a PEM CA file: no certificate in it/])
  t.match(await clientCa('hello.pem'), [/server\.tls\.clientAuth\.ca: not a PEM CA file: no certificate in it/])
  t.match(await clientCa('a.key'), [/server\.tls\.clientAuth\.ca: not a PEM CA file: .*PRIVATE KEY/])
  t.match(await clientCa('mixed.pem'), [/server\.tls\.clientAuth\.ca: not a PEM CA file: block 2 is a PRIVATE KEY, not a certificate/])
  t.match(await clientCa('broken.pem'), [/server\.tls\.clientAuth\.ca: not a PEM CA file: certificate 1 does not parse/])
  writeFileSync(join(dir, 'cut.pem'), ca.cert + ca.cert.slice(0, 100))
  t.match(await clientCa('cut.pem'), [/server\.tls\.clientAuth\.ca: not a PEM CA file: a block has no END line/], 'a bundle cut short')
  t.same(await clientCa('ca.pem'), ['accepted'])
  writeFileSync(join(dir, 'bundle.pem'), `# a comment, as bundles have\n${ca.cert}\n${ca.cert}`)
  t.same(await clientCa('bundle.pem'), ['accepted'], 'a bundle, with text between its certificates')
})
