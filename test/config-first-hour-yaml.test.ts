import t from 'tap'
import { issues } from './helpers/config-issues.ts'

// YAML mistakes of a first config: said where they are, with what to do.
const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`

t.test('a quote never closed is pointed at where it opens, not past the end of the file', async t => {
  // yaml reported it at line 10 of this 9-line file.
  t.same(await issues(t, HEAD + `routes:
  - name: "a
    match: { path: /a }
    upstream: users
  - name: b
`), ['gw.yaml:6:11 this " is never closed: close it (YAML reads on to the next " or the end of the file)'])
  t.same(await issues(t, HEAD + `routes:
  - name: a
    match: { path: '/a }
    upstream: users
`), ["gw.yaml:7:20 this ' is never closed: close it (YAML reads on to the next ' or the end of the file)"])
})

t.test('a Windows path in double quotes: its \\ starts an escape; single quotes or / instead', async t => {
  const tls = (cert: string) => HEAD.replace('  listen: { host: 127.0.0.1, port: 0 }\n', `  listen: { host: 127.0.0.1, port: 0 }\n  tls: { certificates: [ { cert: ${cert}, key: k.pem } ] }\n`) + 'routes: []\n'
  t.same(await issues(t, tls('"C:\\certs\\server.pem"')), [
    'gw.yaml:3:37 server.tls.certificates[0].cert: Invalid escape sequence \\c: in double quotes \\ starts an escape; write \'C:\\certs\\server.pem\' (single quotes) or "C:/certs/server.pem"'
  ])
  t.same(await issues(t, tls('"certs\\server.pem"')), [
    'gw.yaml:3:40 server.tls.certificates[0].cert: Invalid escape sequence \\s: in double quotes \\ starts an escape; write \'certs\\server.pem\' (single quotes) or "certs/server.pem"'
  ])
  // A secret's value is not quoted back, nor its escape sequence (its own characters): only where it is.
  t.same(await issues(t, HEAD + 'admin:\n  listen: { port: 0 }\n  token: "se\\cret-token"\nroutes: []\n'), [
    'gw.yaml:7:13 admin.token: Invalid escape sequence: in double quotes \\ starts an escape; write single quotes, or / in a path'
  ])
})

t.test('a key glued to its value (upstream:users) is said to need a space, at the end of a map or inside it', async t => {
  t.same(await issues(t, HEAD + `routes:
  - name: a
    match: { path: /a }
    upstream:users
`), ['gw.yaml:8:5 a space is missing after "upstream:" (YAML reads key:value as one word)'])
  t.same(await issues(t, HEAD + `routes:
  - name: a
    upstream:users
    match: { path: /a }
`), ['gw.yaml:7:5 a space is missing after "upstream:" (YAML reads key:value as one word)'])
})

t.test('a duplicated key is named with its key path and where it was first written', async t => {
  t.same(await issues(t, HEAD + `  users: { targets: [ { url: "http://127.0.0.1:3002" } ] }
routes: []
`), ['gw.yaml:5:3 upstreams.users: key "users" appears twice in the same map (first on line 4): keep one'])
  t.same(await issues(t, HEAD + `routes:
  - name: a
    match: { path: /a, path: /b }
    upstream: users
`), ['gw.yaml:7:24 routes[0].match.path: key "path" appears twice in the same map (first on line 7): keep one'])
})
