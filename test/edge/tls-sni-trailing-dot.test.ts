import t from 'tap'
import { createTestCa } from '../helpers/certs.ts'
import { presented, tlsGateway } from '../helpers/tls-gateway.ts'

// A fully qualified name (one trailing dot) is the same name, as routing takes it: it got the default certificate.
t.test('SNI with a trailing dot picks the certificate of the name without it, exact and wildcard', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  ca.issue('default', 'DNS:default.example')
  ca.issue('other', 'DNS:other.example')
  ca.issue('wild', 'DNS:*.apps.example.com')
  const { gw } = await tlsGateway(t, ca, '{ certificates: [ { cert: default.pem, key: default.key }, { cert: other.pem, key: other.key }, { cert: wild.pem, key: wild.key } ] }')
  const cases: Array<[string, string]> = [
    ['OTHER.EXAMPLE.', 'other'], ['other.example.', 'other'], ['one.apps.example.com.', 'wild'],
    ['other.example..', 'default'], ['unknown.example.', 'default']
  ]
  for (const [name, cn] of cases) t.equal(await presented(gw, ca, name), cn, `SNI ${name}`)
})
