import t from 'tap'
import { createPrivateKey } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'
import { createTestCa } from '../helpers/certs.ts'

t.test('each PEM file of an upstream\'s tls is checked on its own: a problem is reported at its key, once', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const a = ca.issue('a', 'DNS:a', { client: true })
  ca.issue('b', 'DNS:b', { client: true })
  const dir = join(ca.certFile, '..')
  const key = createPrivateKey(a.key)
  writeFileSync(join(dir, 'pkcs8-encrypted.key'), key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase: 'secret' }))
  writeFileSync(join(dir, 'sec1-encrypted.key'), key.export({ format: 'pem', type: 'sec1', cipher: 'aes-256-cbc', passphrase: 'secret' }))
  writeFileSync(join(dir, 'hello.key'), 'hello')
  const issues = async (tls: string) => {
    const config = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  secure:
    targets: [ { url: "https://127.0.0.1:8443" } ]
    tls: ${tls}
routes:
  - { name: all, match: { path: /* }, upstream: secure }
`
    try {
      await parseConfig(config, join(dir, 'gw.yaml'), {})
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(formatIssue)
      throw err
    }
    return ['accepted']
  }
  const cases: Array<[string, string, RegExp]> = [
    ['an encrypted PKCS#8 key', '{ ca: ca.pem, cert: a.pem, key: pkcs8-encrypted.key }', /gw\.yaml:6:\d+ upstreams\.secure\.tls\.key: encrypted private keys are not supported: decrypt it/],
    ['an encrypted traditional key', '{ ca: ca.pem, cert: a.pem, key: sec1-encrypted.key }', /gw\.yaml:6:\d+ upstreams\.secure\.tls\.key: encrypted private keys are not supported: decrypt it/],
    ['a key file that is no key', '{ ca: ca.pem, cert: a.pem, key: hello.key }', /gw\.yaml:6:\d+ upstreams\.secure\.tls\.key: not a PEM private key: .*DECODER routines::unsupported/],
    ['a key file holding a certificate', '{ ca: ca.pem, cert: a.pem, key: b.pem }', /gw\.yaml:6:\d+ upstreams\.secure\.tls\.key: not a PEM private key: /],
    ['a cert file holding a key', '{ ca: ca.pem, cert: a.key, key: a.key }', /gw\.yaml:6:\d+ upstreams\.secure\.tls\.cert: not a PEM certificate: .*no start line/],
    ['a key that does not fit its certificate', '{ ca: ca.pem, cert: a.pem, key: b.key }', /gw\.yaml:6:\d+ upstreams\.secure\.tls\.key: does not fit the certificate: .*key values mismatch/]
  ]
  for (const [name, tls, expected] of cases) {
    const found = await issues(tls)
    t.match(found, [expected], name)
    t.equal(found.length, 1, `${name}: reported once (${found.join('; ')})`)
  }
  t.match(await issues('{ ca: ca.pem, cert: a.key, key: hello.key }'), [/tls\.cert: not a PEM certificate/, /tls\.key: not a PEM private key/], 'both at once, each at its key')
  t.same(await issues('{ ca: ca.pem, cert: a.pem, key: a.key }'), ['accepted'])
})
