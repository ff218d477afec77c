import t from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { createTestCa } from '../helpers/certs.ts'
import { spawnCli, stopCli } from '../helpers/cli.ts'
import { configFile } from '../reload/helpers.ts'

// A wrong name's TLS error (ERR_TLS_CERT_ALTNAME_INVALID) carries the upstream's certificate as
// Node reads it: logged whole, its DER bytes, public key and each issuer's too, KBs a line.
t.test('an upstream certificate for another name: its error logged with what names the certificate, not the whole of it', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const issued = ca.issue('api', 'DNS:api.internal')
  const https: Server = createServer({ cert: issued.cert, key: issued.key }, (req, res) => res.end('ok'))
  await new Promise<void>(resolve => https.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>(resolve => { https.closeAllConnections(); https.close(() => resolve()) }))
  const cf = await configFile(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "https://127.0.0.1:${(https.address() as AddressInfo).port}" } ], tls: { ca: "${ca.certFile}" }, passive: false }
routes:
  - { name: r, match: { path: /* }, upstream: u }
`)
  t.teardown(() => cf.remove())
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(() => stopCli(cli))
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, 'started', { stderr: cli.stderr() })
  const res = await request(`${(ready as { url: string }).url}/x`, { headersTimeout: 10_000 })
  await res.body.dump()
  t.equal(res.statusCode, 502)
  const line = await cli.waitForLine(l => (l.err as { code?: string } | undefined)?.code === 'ERR_TLS_CERT_ALTNAME_INVALID', 10_000)
  const cert = new X509Certificate(issued.cert)
  const fingerprint256 = createHash('sha256').update(cert.raw).digest('hex').toUpperCase().match(/../g)?.join(':')
  t.same((line?.err as { cert?: unknown } | undefined)?.cert, {
    subject: { CN: 'api' },
    subjectaltname: 'DNS:api.internal',
    issuer: { CN: 'Portcullis Test CA' },
    valid_to: cert.validTo,
    fingerprint256
  }, 'the certificate as its subject, names, issuer, expiry and fingerprint')
  t.ok(JSON.stringify(line).length < 1500, `a line of its own size (${JSON.stringify(line).length} bytes)`)
})
