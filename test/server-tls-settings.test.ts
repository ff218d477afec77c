import t from 'tap'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type ConnectionOptions } from 'node:tls'
import { parseConfig } from '../src/config/load.ts'
import { issues as configIssues } from './helpers/config-issues.ts'
import { createTestCa } from './helpers/certs.ts'
import { handshake, tlsGateway } from './helpers/tls-gateway.ts'
import type { TestGateway } from './helpers/gateway.ts'
import type { TestCa } from './helpers/certs.ts'

/** What a handshake with `options` ends with: the cipher and key exchange group, or the refusal. */
async function negotiated (gw: TestGateway, ca: TestCa, options: ConnectionOptions): Promise<string> {
  try {
    const { socket } = await handshake(gw, ca, 'api.example.com', options)
    const result = `${socket.getProtocol() ?? '?'} ${socket.getCipher().name} ${(socket.getEphemeralKeyInfo() as { name?: string }).name ?? '?'}`
    socket.destroy()
    return result
  } catch (err) {
    return `refused: ${(err as Error).message}`
  }
}

const TLS12 = { maxVersion: 'TLSv1.2' } as const

t.test('default ciphers: Mozilla intermediate for TLS 1.2 (no CBC), TLS 1.3 as Node has it', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('server', 'DNS:api.example.com')
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: server.pem, key: server.key } ] }')
  // prime256v1 too: in TLS 1.2 the client's groups also bound the certificate's curve (P-256 here).
  t.equal(await negotiated(gw, ca, { ...TLS12, ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305', ecdhCurve: 'X25519:prime256v1' }), 'TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305 X25519')
  t.match(await negotiated(gw, ca, { ...TLS12, ciphers: 'ECDHE-ECDSA-AES128-SHA256' }), /^refused: .*handshake failure/, 'CBC suites, which Node\'s default accepts, are refused')
  t.match(await negotiated(gw, ca, { ...TLS12, ciphers: 'ECDHE-ECDSA-AES256-SHA' }), /^refused/)
  t.equal(await negotiated(gw, ca, { ciphers: 'TLS_CHACHA20_POLY1305_SHA256', ecdhCurve: 'prime256v1' }), 'TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 prime256v1')
})

t.test('ciphers and curves set: only those are agreed; TLS 1.3 suites stay unless TLS_ names are given', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('server', 'DNS:api.example.com')
  ca.issue('api', 'DNS:api.example.com')
  // Two certificates: the SNI-chosen one must carry the settings too, not only the listener's default.
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: server.pem, key: server.key }, { cert: api.pem, key: api.key } ], ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384", curves: "secp384r1" }')
  t.equal(await negotiated(gw, ca, TLS12), 'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384 secp384r1')
  t.match(await negotiated(gw, ca, { ...TLS12, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), /^refused/, 'a cipher not in the list')
  t.match(await negotiated(gw, ca, { ecdhCurve: 'X25519:prime256v1' }), /^refused/, 'a curve not in the list')
  t.equal(await negotiated(gw, ca, { ciphers: 'TLS_AES_128_GCM_SHA256' }), 'TLSv1.3 TLS_AES_128_GCM_SHA256 secp384r1')
})

t.test('a bad cipher or curve list is a config error at its key', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('a', 'DNS:a.example')
  const text = (tls: string) => `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  tls:\n    certificates: [ { cert: a.pem, key: a.key } ]\n${tls}\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes: []\n`
  const file = join(ca.certFile, '..', 'gw.yaml')
  const issues = (tls: string) => configIssues(t, text(tls), {}, file)
  // OpenSSL alone would accept the first: one entry matches, the misspelt one is skipped.
  t.match(await issues('    ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA265"'),
    [/\/gw\.yaml:5:\d+ server\.tls\.ciphers: unknown cipher "ECDHE-ECDSA-AES128-GCM-SHA265" \(OpenSSL /])
  t.match(await issues('    ciphers: "TLS_AES_128_GCM_SHA255"'), [/gw\.yaml:5:\d+ server\.tls\.ciphers: unknown cipher "TLS_AES_128_GCM_SHA255"/])
  t.match(await issues('    curves: "X25519:P-999"'), [/gw\.yaml:5:\d+ server\.tls\.curves: unknown curve "P-999"/])
  t.match(await issues('    ciphers: nope\n    curves: nope'), [/server\.tls\.ciphers: unknown cipher "nope"/, /server\.tls\.curves: unknown curve "nope"/], 'both, and no misleading key error')
  await t.resolves(parseConfig(text('    ciphers: "HIGH:!aNULL:!EXPORT:@STRENGTH"\n    curves: "X25519:P-256"'), file, {}), 'keywords, exclusions and ordering are OpenSSL\'s syntax')
})

/** The OCSP response stapled in a handshake for `servername`, as hex ('none' if none). */
async function stapled (gw: TestGateway, ca: TestCa, servername?: string): Promise<string> {
  // requestOCSP is a TLSSocket option connect() passes on (missing from @types/node's ConnectionOptions).
  const socket = connect({ host: '127.0.0.1', port: Number(new URL(gw.url).port), ca: ca.cert, servername, rejectUnauthorized: false, requestOCSP: true } as ConnectionOptions)
  let response = 'none'
  // Emitted during the handshake, before secureConnect: null when the server staples nothing.
  socket.on('OCSPResponse', (r: Buffer | null) => { response = r?.toString('hex') ?? 'none' })
  await new Promise<void>((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject) })
  socket.destroy()
  return response
}

t.test('OCSP stapling: each certificate\'s response, to clients that ask; reloaded with the certificates', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const main = ca.issue('main', 'DNS:main.example')
  const api = ca.issue('api', 'DNS:api.example.com')
  ca.issue('plain', 'DNS:plain.example')
  const dir = join(ca.certFile, '..')
  copyFileSync(ca.ocsp(main), join(dir, 'main.der'))
  const apiResponse = readFileSync(ca.ocsp(api))
  writeFileSync(join(dir, 'api.der'), apiResponse)
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: main.pem, key: main.key, ocsp: main.der }, { cert: api.pem, key: api.key, ocsp: api.der }, { cert: plain.pem, key: plain.key } ] }')
  const mainResponse = readFileSync(join(dir, 'main.der'))
  t.ok(mainResponse.length > 100 && !mainResponse.equals(apiResponse), 'two distinct DER responses (made by openssl ocsp)')
  t.equal(await stapled(gw, ca, 'api.example.com'), apiResponse.toString('hex'), 'the SNI-chosen certificate\'s response')
  t.equal(await stapled(gw, ca), mainResponse.toString('hex'), 'without SNI: the default certificate\'s')
  t.equal(await stapled(gw, ca, 'main.example'), mainResponse.toString('hex'))
  t.equal(await stapled(gw, ca, 'plain.example'), 'none', 'a certificate without ocsp: nothing stapled')
  const { socket, cn } = await handshake(gw, ca, 'api.example.com')
  t.equal(cn, 'api', 'a client that does not ask connects as before')
  socket.destroy()

  // A fresh response (cron running openssl ocsp): the next reload staples it.
  const renewed = readFileSync(ca.ocsp(api))
  t.not(renewed.toString('hex'), apiResponse.toString('hex'))
  writeFileSync(join(dir, 'api.der'), renewed)
  t.match(await gw.reloader.reload('admin'), { result: 'success' })
  t.equal(await stapled(gw, ca, 'api.example.com'), renewed.toString('hex'))

  writeFileSync(join(dir, 'api.der'), '-----BEGIN OCSP-----\n')
  const failed = await gw.reloader.reload('admin')
  t.match(failed.issues, [{ path: 'server.tls.certificates[1].ocsp', message: /^not a DER OCSP response/ }])
  t.equal(await stapled(gw, ca, 'api.example.com'), renewed.toString('hex'), 'the running response keeps being stapled')
})
