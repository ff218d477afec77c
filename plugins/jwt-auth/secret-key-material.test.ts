import t from 'tap'
import { createHash, createHmac, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { createTestCa } from '../../test/helpers/certs.ts'
import { issues } from '../../test/helpers/config-issues.ts'
import { b64url, mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { runCliHere } from '../../test/helpers/run-cli.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { configFile, startFromFile } from '../../test/reload/helpers.ts'

// A secret is an HMAC key: one that is a public key (or certificate) lets anyone holding it forge
// HS256 tokens, and was taken as it was. Key material in secret is now a config error at secret.

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const rsa = await signingKey('RS256', 'rsa-1')
const rsaKeys = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const ca = createTestCa('secret-test', fn => t.teardown(fn))
const pemBody = (pem: string) => pem.replace(/-----[A-Z ]+-----/g, '').trim()
const derOf = (pem: string) => Buffer.from(pemBody(pem), 'base64')
const pkcs1 = (rsaKeys.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string)
const sshBlob = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'
// What an attacker rebuilds from the IdP's public JWKS: its RSA key as PKCS#1 DER, in base64.
const pkcs1FromJwks = createPublicKey({ key: rsa.jwk, format: 'jwk' }).export({ format: 'der', type: 'pkcs1' }).toString('base64')

const ANYONE = 'which anyone may hold: HMAC needs a shared secret; give public keys under keys or jwksUri'
const GIVE = 'HMAC needs a shared secret; give public keys under keys or jwksUri'
const MATERIAL: Array<[string, string, string]> = [
  ['a public key (SPKI PEM)', rsa.pem, `a public key, ${ANYONE}`],
  ['a public key (PKCS#1 PEM), CRLF', (rsaKeys.publicKey.export({ format: 'pem', type: 'pkcs1' }) as string).replace(/\n/g, '\r\n'), `a public key, ${ANYONE}`],
  ['a certificate', ca.cert, `a certificate, ${ANYONE}`],
  ['a private key (PKCS#8)', rsaKeys.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, `a private key: ${GIVE}`],
  ['a private key (SEC1)', ec.privateKey.export({ format: 'pem', type: 'sec1' }) as string, `a private key: ${GIVE}`],
  ['an OpenSSH public key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@example', `an SSH public key, ${ANYONE}`],
  ['an ECDSA OpenSSH public key', `ecdsa-sha2-nistp256 ${'A'.repeat(40)}`, `an SSH public key, ${ANYONE}`],
  ['a public JWK', JSON.stringify(rsa.jwk), `a public key (JWK), ${ANYONE}`],
  ['a JWK set', JSON.stringify({ keys: [rsa.jwk] }), `a JWK set, ${ANYONE}`],
  ['a private JWK', JSON.stringify(ec.privateKey.export({ format: 'jwk' })), `a private or symmetric JWK: ${GIVE}`],
  ['a symmetric JWK', JSON.stringify({ kty: 'oct', k: Buffer.from(SECRET).toString('base64url') }), `a private or symmetric JWK: ${GIVE}`],
  ['a JWK set with a private key', JSON.stringify({ keys: [ec.privateKey.export({ format: 'jwk' })] }), `a JWK set with private or symmetric keys: ${GIVE}`],
  ['a PEM public key\'s body, unarmoured', pemBody(rsa.pem), `a public key, ${ANYONE}`],
  ['a certificate in base64 DER (a JWK\'s x5c)', pemBody(ca.cert).replace(/\s/g, ''), `a certificate, ${ANYONE}`],
  ['a private key\'s PKCS#8 body', pemBody(ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), `a private key: ${GIVE}`],
  ['a PKCS#1 public key\'s body (rebuilt from a JWKS)', pkcs1FromJwks, `a public key, ${ANYONE}`],
  ['a PKCS#1 private key\'s body', pemBody(rsaKeys.privateKey.export({ format: 'pem', type: 'pkcs1' }) as string), `a private key: ${GIVE}`],
  ['a SEC1 private key\'s body', pemBody(ec.privateKey.export({ format: 'pem', type: 'sec1' }) as string), `a private key: ${GIVE}`],
  ['an SPKI DER in base64url', derOf(rsa.pem).toString('base64url'), `a public key, ${ANYONE}`],
  ['an SPKI DER in hex', derOf(rsa.pem).toString('hex'), `a public key, ${ANYONE}`],
  ['a PKCS#1 DER in colon-separated hex', derOf(pkcs1).toString('hex').replace(/(..)(?!$)/g, '$1:'), `a public key, ${ANYONE}`],
  ['a JWK JSON-encoded as a string', JSON.stringify(JSON.stringify(rsa.jwk)), `a public key (JWK), ${ANYONE}`],
  ['a PEM public key JSON-encoded as a string', JSON.stringify(rsa.pem), `a public key, ${ANYONE}`],
  ['an array of JWKs', JSON.stringify([rsa.jwk]), `a JWK set, ${ANYONE}`],
  ['the base64 of a PEM file (a Kubernetes Secret\'s data)', Buffer.from(rsa.pem).toString('base64'), `a public key, ${ANYONE}`],
  ['an RFC 4716 SSH2 public key', `---- BEGIN SSH2 PUBLIC KEY ----\nComment: "alice"\n${sshBlob}\n---- END SSH2 PUBLIC KEY ----`, `an SSH public key, ${ANYONE}`],
  ['an OpenSSH public key after authorized_keys options', `no-pty,from="10.0.0.0/8" ssh-ed25519 ${sshBlob} alice`, `an SSH public key, ${ANYONE}`],
  ['an OpenSSH certificate', `ssh-ed25519-cert-v01@openssh.com ${sshBlob}`, `an SSH public key, ${ANYONE}`],
  ['an OpenSSH public key\'s base64 alone', sshBlob, `an SSH public key, ${ANYONE}`],
  ['an OpenSSH private key\'s body', Buffer.concat([Buffer.from('openssh-key-v1\0none\0'), randomBytes(200)]).toString('base64'), `a private key: ${GIVE}`],
  ['PEM of another kind', '-----BEGIN X509 CRL-----\nMIIBAA==\n-----END X509 CRL-----', `holds -----BEGIN, the start of PEM text: ${GIVE}`]
]

const plugin = (secret: string) => `      jwt-auth:
        keys: [ ${JSON.stringify(rsa.pem)} ]
        secret: ${secret}
`
const ROUTE = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
`

t.test('a secret that is key material is a config error at secret, saying what it is and never quoting it', async t => {
  for (const [what, secret, message] of MATERIAL) {
    t.same(await issues(t, ROUTE + plugin('${JWT_SECRET}'), { JWT_SECRET: secret }),
      [`gw.yaml:12:17 routes[0].plugins.jwt-auth.secret: ${message} (from the variable JWT_SECRET)`], what)
  }
  t.same(await issues(t, ROUTE + plugin(JSON.stringify(rsa.pem))), [`gw.yaml:12:17 routes[0].plugins.jwt-auth.secret: a public key, ${ANYONE}`], 'written in the file too')
})

t.test('shared secrets load, however they are spelled', async t => {
  for (const secret of [SECRET, '6pK3dxRRp1ytg+syqktbqqxOrcHuNWZpm11OCcFKND+YHWquFng0twnuGwzq7mip', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '{"password": "not a key, only a long enough string"}', 'sshhh-not-a-key-but-a-passphrase-long-enough',
    // Words that begin key text, and JSON with a keys member or an array, that are none of it.
    'ssh-this-is-our-team-passphrase-for-jwt-2026', 'ecdsa-signatures-are-not-used-here-just-hmac!', 'sk-ssh-ed25519 is what our tokens never use, 2026',
    '{"keys": "rotate me yearly", "v": "abcdefghijklmnopqrstuvwxyz"}', '["not", "a", "key", "set", "but long enough"]',
    JSON.stringify('a JSON string holding a long enough secret'), Buffer.from('a base64 of a passphrase long enough, no key').toString('base64')]) {
    await t.resolves(parseConfig(ROUTE + plugin('${JWT_SECRET}'), 'gw.yaml', { JWT_SECRET: secret }), secret)
  }
})

t.test('a secret that is a member of a configured public key (n, x5t#S256...), however encoded, is a config error at secret', async t => {
  const n = rsa.jwk.n as string
  const thumbprint = createHash('sha256').update(derOf(rsa.pem)).digest('base64url')
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-secret-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const jwksFile = join(dir, 'jwks.json')
  writeFileSync(jwksFile, JSON.stringify({ keys: [rsa.jwk] }))
  const keysOf = (keys: string) => ROUTE + plugin('${JWT_SECRET}').replace(`keys: [ ${JSON.stringify(rsa.pem)} ]`, keys)
  const at = (member: string) => [`gw.yaml:12:17 routes[0].plugins.jwt-auth.secret: ${member} of a public key this config gives, ${ANYONE} (from the variable JWT_SECRET)`]
  const pem = `keys: [ ${JSON.stringify(rsa.pem)} ]`
  const cases: Array<[string, string, string, string]> = [
    ['n of a PEM key, base64url as in its JWK', pem, n, 'n'],
    ['n in base64', pem, Buffer.from(n, 'base64url').toString('base64'), 'n'],
    ['n in hex (openssl -modulus)', pem, Buffer.from(n, 'base64url').toString('hex').toUpperCase(), 'n'],
    ['n in a YAML-ish JWK', pem, `kty: RSA\nn: ${n}\ne: AQAB`, 'n'],
    ['x5t#S256 of a JWK', `keys: [ ${JSON.stringify({ ...rsa.jwk, 'x5t#S256': thumbprint })} ]`, thumbprint, 'x5t#S256'],
    ['n of a key in jwksFile', `jwksFile: ${JSON.stringify(jwksFile)}`, n, 'n']
  ]
  for (const [what, keys, secret, member] of cases) t.same(await issues(t, keysOf(keys), { JWT_SECRET: secret }), at(member), what)
  await t.resolves(parseConfig(keysOf(pem), 'gw.yaml', { JWT_SECRET: SECRET }), 'a shared secret loads beside them')
})

t.test('portcullis validate and start exit non-zero, the secret not printed', async t => {
  const cf = await configFile(ROUTE + plugin(JSON.stringify(rsa.pem)))
  t.teardown(() => cf.remove())
  for (const command of ['validate', 'start']) {
    const run = await runCliHere(command, '-c', cf.file)
    t.not(run.code, 0, command)
    t.match(run.stderr, `routes[0].plugins.jwt-auth.secret: a public key, ${ANYONE}`, command)
    t.notMatch(run.stdout + run.stderr, pemBody(rsa.pem).split('\n')[1], `${command}: no line of the key`)
  }
})

t.test('a reload to a key-material secret fails: the old config keeps serving, and a token HMAC\'d with the public key is refused', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const yaml = (secret: string) => ROUTE.replace('http://127.0.0.1:9', up.url) + plugin(JSON.stringify(secret))
  const cf = await configFile(yaml(SECRET))
  t.teardown(() => cf.remove())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const now = Math.floor(Date.now() / 1000)
  const hs256 = (key: string) => {
    const input = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'admin', iat: now, exp: now + 600 })}`
    return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`
  }
  const status = async (token: string) => {
    const res = await request(`${gw.url}/r`, { headers: { authorization: `Bearer ${token}` } })
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await status(hs256(SECRET)), 200, 'the shared secret verifies')
  // The public key as PEM, as the PKCS#1 DER anyone rebuilds from the JWKS, and its modulus alone.
  const forged: Array<[string, string]> = [[rsa.pem, `a public key, ${ANYONE}`], [pkcs1FromJwks, `a public key, ${ANYONE}`], [rsa.jwk.n as string, `n of a public key this config gives, ${ANYONE}`]]
  for (const [secret, message] of forged) {
    await cf.write(yaml(secret))
    t.match(await gw.reloader.reload('admin'), { result: 'invalid', issues: [{ path: 'routes[0].plugins.jwt-auth.secret', message }] }, 'the reload is refused')
    t.equal(await status(hs256(secret)), 401, 'a token HMAC\'d with the public key: refused')
  }
  t.equal(await status(hs256(SECRET)), 200, 'the old config serves on')
  t.equal(await status(await mint(rsa, { sub: 'alice', iat: now, exp: now + 600 })), 200, 'the key verifies RS256 tokens')
})
