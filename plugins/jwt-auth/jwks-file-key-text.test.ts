import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

// A key given for jwksFile (a ${VAR} holding it) was quoted whole as the path that was not found:
// a PEM private key's lines in the error. Key text there is said to be that, never quoted.

const body = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, '')
// A body holding // or ending in / is no longer the key's once made an absolute path (path.resolve folds them): one without.
const privatePems = (): { pkcs8: string, sec1: string, spki: string } => {
  for (;;) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pems = { pkcs8: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, sec1: privateKey.export({ format: 'pem', type: 'sec1' }) as string, spki: publicKey.export({ format: 'pem', type: 'spki' }) as string }
    if (!/\/\/|\/$/m.test(`${body(pems.pkcs8)}\n${body(pems.sec1)}`)) return pems
  }
}
const { pkcs8, sec1, spki } = privatePems()
const text = ONE_ROUTE_PLUGINS + '      jwt-auth: { jwksFile: "${JWKS}", audience: api }\n'
const said = (what: string) => `gw.yaml:10:29 routes[0].plugins.jwt-auth.jwksFile: holds ${what}, not a file path: write the key set to a file and give that file's path, or a PEM public key under keys (from "\${JWKS}")`

t.test('key text given for jwksFile is said to be that, never quoted', async t => {
  const cases: Array<[string, string, string]> = [
    ['a PEM private key', pkcs8, 'PEM text'],
    ['a PEM public key', spki, 'PEM text'],
    ['an RFC 4716 SSH2 public key', '---- BEGIN SSH2 PUBLIC KEY ----\nAAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n---- END SSH2 PUBLIC KEY ----', 'PEM text'],
    ['a private key\'s PKCS#8 body', body(pkcs8), 'key material'],
    ['a private key\'s SEC1 body', body(sec1), 'key material']
  ]
  for (const [what, value, kind] of cases) {
    const got = await issues(t, text, { JWKS: value })
    t.same(got, [said(kind)], what)
    t.notMatch(got.join('\n'), body(value).slice(8, 40), `${what}: no part of it shown`)
  }
})

t.test('a path is still read as one', async t => {
  const [missing] = await issues(t, text, { JWKS: 'no-such-jwks' })
  t.match(missing, /jwksFile: \/.*\/no-such-jwks: ENOENT/)
})
