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

// Bodies path resolution changes: its `//` folded into `/`, a last `/` dropped (the text was then quoted as the path not found).
// The base64 of text (PEM, JSON) never holds `//` nor ends in `/`: ASCII bytes have their top bit clear.
const folded = (make: () => string, test: (body: string) => boolean): string => {
  for (;;) {
    const value = make()
    if (test(value)) return value
  }
}
const ecPair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' })
const withDoubleSlash = (v: string) => v.includes('//')

t.test('a base64 key body that path resolution changes (`//`, a last `/`) is still said to be key material, never quoted', async t => {
  const cases: Array<[string, string]> = [
    ['a private key\'s PKCS#8 body with //', folded(() => body(ecPair().privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), withDoubleSlash)],
    ['a private key\'s PKCS#8 body ending in /', folded(() => body(ecPair().privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), v => v.endsWith('/'))],
    ['a public key\'s SPKI body with //', folded(() => body(ecPair().publicKey.export({ format: 'pem', type: 'spki' }) as string), withDoubleSlash)]
  ]
  for (const [what, value] of cases) {
    const got = await issues(t, text, { JWKS: value })
    t.same(got, [said('key material')], what)
    const longest = value.split('/').reduce((a, b) => a.length >= b.length ? a : b)
    t.notMatch(got.join('\n'), longest.slice(0, 24), `${what}: no part of it shown`)
  }
})

t.test('a path is still read as one', async t => {
  const [missing] = await issues(t, text, { JWKS: 'no-such-jwks' })
  t.match(missing, /jwksFile: \/.*\/no-such-jwks: ENOENT/)
  // Letters, digits and slashes alone, as base64 is: a path all the same.
  const [letters] = await issues(t, text, { JWKS: `secrets/idp/v2/${'K'.repeat(80)}/jwks` })
  t.match(letters, /jwksFile: \/.*\/secrets\/idp\/v2\/K{80}\/jwks: ENOENT/)
})
