import t from 'tap'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'

const SECRET = 'hunter2-Secret-PW'
const TARGET = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "${TARGET}" } ] }\nroutes:\n  - { name: r, match: { path: /a }, upstream: up }\n'
const STORE = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nstores:\n  r: { type: redis, url: "${REDIS_URL}" }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - { name: r, match: { path: /a }, upstream: up }\n'

// The "got" note of a value from ${VAR} showed a mistyped URL's password: only scheme://user@ was read as a URL.
t.test('a mistyped URL from a variable is quoted without its user and password', async t => {
  const cases: Array<[string, string, string]> = [
    [TARGET, 'TARGET', `http:/user:${SECRET}@127.0.0.1:3001`],
    [TARGET, 'TARGET', `user:${SECRET}@127.0.0.1:3001`],
    [STORE, 'REDIS_URL', `redis:/:${SECRET}@127.0.0.1`],
    [STORE, 'REDIS_URL', `:${SECRET}@127.0.0.1`]
  ]
  for (const [text, name, value] of cases) {
    const said = (await issues(t, text, { [name]: value })).join('\n')
    t.notMatch(said, SECRET, value)
    t.match(said, `from "\${${name}}"`, `${value}: where it came from is said`)
    t.match(said, '[redacted]@127.0.0.1', `${value}: its host is shown`)
  }
})

// `url: redis://:pa55,w0rd@h` in { } is read as the URL `redis://:pa55` and a key `w0rd@h` with no
// value: the first half of the password was quoted as the port, the second as the key.
t.test('a URL cut at a comma of its password in { } is quoted in neither half', async t => {
  const flow = [
    'server:\n  listen: { host: 127.0.0.1, port: 0 }\nstores:\n  r: { type: redis, url: redis://:pa55,w0rd-Secret@127.0.0.1:6379 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - { name: r, match: { path: /a }, upstream: up }\n',
    'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: http://user:pa55,w0rd-Secret@127.0.0.1:3001 } ] }\nroutes:\n  - { name: r, match: { path: /a }, upstream: up }\n'
  ]
  for (const text of flow) {
    const said = await issues(t, text)
    t.equal(said.length, 2)
    t.match(said[0], /url: the port is not a number \(.*quote the whole URL/)
    t.match(said[1], /\.\[redacted\]@127\.0\.0\.1:\d+: has no value$/)
    t.notMatch(said.join('\n'), /pa55|w0rd/)
  }
  t.same(await issues(t, 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://[::1:80" } ] }\nroutes:\n  - { name: r, match: { path: /a }, upstream: up }\n'), [
    'gw.yaml:4:27 upstreams.up.targets[0].url: "http://[::1:80" is not a valid URL: check its host (a name, an IPv4 address or an [IPv6] one, no spaces) and port'
  ], 'an IPv6 address missing its bracket is still quoted')
})

// The key set's JSON given for jwksFile was quoted three times: as the path, in ENOENT's message, and in the "got" note.
t.test('JWKS text given for jwksFile is said to be that, not quoted; a file path is not quoted again as "got"', async t => {
  const JWKS = JSON.stringify({ keys: [{ kty: 'RSA', n: 'modulus-text-xyz', e: 'AQAB' }] })
  const text = ONE_ROUTE_PLUGINS + '      jwt-auth: { jwksFile: "${JWKS}", audience: api }\n'
  t.same(await issues(t, text, { JWKS }), [
    'gw.yaml:10:29 routes[0].plugins.jwt-auth.jwksFile: holds JWKS text, not a file path: write the key set to a file and give that file\'s path (from "${JWKS}")'
  ])
  const [missing] = await issues(t, text, { JWKS: 'no-such-jwks.json' })
  t.match(missing, /jwksFile: \/.*\/no-such-jwks\.json: ENOENT.* \(from "\$\{JWKS\}"\)$/)
  t.notMatch(missing, 'got', 'the path is quoted once, as read')
})
