import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issues } from './helpers/config-issues.ts'

// What a new user gets wrong first: one problem per mistake, where it is, saying what to do.
const UPSTREAMS = `upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`
const head = (listen = '{ host: 127.0.0.1, port: 0 }') => `server:\n  listen: ${listen}\n`

t.test('path patterns with a stray *: rejected on match.path, with the pattern meant', async t => {
  t.same(await issues(t, head() + UPSTREAMS + `routes:
  - { name: a, match: { path: /users* }, upstream: users, stripPrefix: /users }
  - { name: b, match: { path: /orders/** }, upstream: users }
  - { name: c, match: { path: /teams/*/members }, upstream: users }
`), [
    'gw.yaml:6:31 routes[0].match.path: path "/users*": "*" may only be a whole last segment (did you mean "/users/*"?)',
    'gw.yaml:7:31 routes[1].match.path: path "/orders/**": "*" may only be a whole last segment (did you mean "/orders/*"?)',
    'gw.yaml:8:31 routes[2].match.path: path "/teams/*/members": "*" may only be a whole last segment (did you mean "/teams/:param/members"?)'
  ])
})

t.test('YAML: an unquoted ${VAR} inside { } is one problem, saying to quote it', async t => {
  t.same(await issues(t, head('{ host: 127.0.0.1, port: ${PORT:-8080} }') + UPSTREAMS + 'routes: []\n'), [
    'gw.yaml:2:36 ${PORT:-8080} inside { } or [ ] must be quoted: "${PORT:-8080}" (YAML reads its "{" as the start of a map)'
  ])
})

t.test('YAML: so is one in any form interpolation takes (${VAR-default}, ${VAR:?message})', async t => {
  t.same(await issues(t, head('{ host: 127.0.0.1, port: ${PORT-8080} }') + UPSTREAMS + 'routes: []\n'), [
    'gw.yaml:2:36 ${PORT-8080} inside { } or [ ] must be quoted: "${PORT-8080}" (YAML reads its "{" as the start of a map)'
  ])
  t.same(await issues(t, head('{ host: 127.0.0.1, port: ${PORT:?set PORT} }') + UPSTREAMS + 'routes: []\n'), [
    'gw.yaml:2:36 ${PORT:?set PORT} inside { } or [ ] must be quoted: "${PORT:?set PORT}" (YAML reads its "{" as the start of a map)'
  ])
})

t.test('YAML: a tab in the indentation is one problem, saying to use spaces', async t => {
  t.same(await issues(t, 'server:\n  listen:\n\thost: 127.0.0.1\n    port: 8080\n' + UPSTREAMS + 'routes: []\n'), [
    'gw.yaml:3:1 a tab in the indentation: YAML indents with spaces only'
  ])
})

t.test('YAML: a key indented less or more than its siblings is pointed at, not column 1', async t => {
  t.same(await issues(t, 'server:\n  listen:\n    host: 127.0.0.1\n   port: 8080\n' + UPSTREAMS + 'routes: []\n'), [
    'gw.yaml:4:4 "port" is indented 3 spaces, which matches no key above it ("host" has 4, "listen" 2): check the indentation of "port"'
  ])
  t.same(await issues(t, 'server:\n  listen:\n    host: 127.0.0.1\n      port: 8080\n' + UPSTREAMS + 'routes: []\n'), [
    'gw.yaml:4:7 "port" is indented more than "host" above it (6 spaces, not 4): align it, or give "host" no value on its line'
  ])
  // In a list item, yaml reads the key one space left of its siblings as a sequence item without "-".
  t.same(await issues(t, head() + UPSTREAMS + `routes:
  - name: users
    match: { path: /users/* }
    upstream: users
   plugins:
      cors: {}
`), [
    'gw.yaml:9:4 "plugins" is indented 3 spaces, which matches no key above it ("upstream" has 4, "routes" 0): check the indentation of "plugins"'
  ])
})

t.test('a value from ${VAR} that fails says the value and where it came from, a secret\'s without its value', async t => {
  t.same(await issues(t, head('{ host: 127.0.0.1, port: "${FH_PORT}" }') + `admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: "\${ADMIN_TOKEN}"
` + UPSTREAMS + `routes:
  - { name: a, match: { path: /a }, upstream: "\${UP}" }
  - { name: b, match: { path: /b }, upstream: users, timeouts: { response: "\${T:-soon}s" } }
`, { FH_PORT: 'abc', ADMIN_TOKEN: 'too-short', UP: 'orders' }), [
    'gw.yaml:2:36 server.listen.port: must be an integer (got "abc" from "${FH_PORT}")',
    'gw.yaml:5:10 admin.token: must NOT have fewer than 16 characters (from the variable ADMIN_TOKEN)',
    'gw.yaml:9:47 routes[0].upstream: unknown upstream "orders"; there are: users (from "${UP}")',
    'gw.yaml:10:76 routes[1].timeouts.response: must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m (got "soons" from "${T:-soon}s")'
  ])
})

t.test('YAML: a duplicated key is named', async t => {
  t.same(await issues(t, head() + `upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001" } ]
  users:
    targets: [ { url: "http://127.0.0.1:3002" } ]
routes: []
`), ['gw.yaml:6:3 upstreams.users: key "users" appears twice in the same map (first on line 4): keep one'])
  // After an empty value yaml points at that value (line 3, after the colon), not at the second key.
  t.same(await issues(t, head() + `  trustProxy:
  trustProxy: true
` + UPSTREAMS + 'routes: []\n'), ['gw.yaml:4:3 server.trustProxy: key "trustProxy" appears twice in the same map (first on line 3): keep one'])
})

t.test('YAML: a merge key (<<) is one problem, saying merge keys are not supported, not an unknown key and what it left out', async t => {
  t.same(await issues(t, head() + UPSTREAMS + `routes:
  - &base { name: a, match: { path: /a }, upstream: users }
  - <<: *base
    name: b
    match: { path: /b }
`), ['gw.yaml:7:5 merge keys (<<) are not supported: put the anchor on a whole value and alias it (key: *name), or write the keys out'])
})

t.test('YAML: an empty file, or one of comments only, is said to be empty', async t => {
  t.same(await issues(t, ''), ['gw.yaml:1:1 the file is empty: a config needs at least server, upstreams and routes'])
  t.same(await issues(t, '# nothing yet\n\n# still nothing\n'), ['gw.yaml:1:1 the file is empty: a config needs at least server, upstreams and routes'])
})

t.test('YAML: a second document (---) is one problem at its marker, saying one document per file', async t => {
  t.same(await issues(t, head() + UPSTREAMS + 'routes: []\n---\nroutes: []\n'), [
    'gw.yaml:6:1 a config file holds one YAML document: this "---" starts a second one (remove it, or move what follows to a file of its own)'
  ])
})

t.test('a key dedented out of its parent is one problem: check the indentation of that key', async t => {
  t.same(await issues(t, head() + `upstreams:
  users:
  targets: [ { url: "http://127.0.0.1:3001" } ]
routes: []
`), ['gw.yaml:5:3 upstreams.targets: "targets" is outside "users", which it seems to belong to: check the indentation of "targets"'])
  t.same(await issues(t, head() + `upstreams:
  users:
    connections: 4
  targets: [ { url: "http://127.0.0.1:3001" } ]
routes: []
`), ['gw.yaml:6:3 upstreams.targets: "targets" is outside "users", which it seems to belong to: check the indentation of "targets"'])
})

t.test('an empty key is not taken for the parent of a key further out: both are reported, the typo with its did-you-mean', async t => {
  t.same(await issues(t, head() + `upstreams:
  app:
    targets: [ { url: "http://127.0.0.1:3001" } ]
    timeouts:
      connect:
routes:
  - { name: a, match: { path: /a }, upstream: app }
loging:
  level: info
`), [
    'gw.yaml:7:15 upstreams.app.timeouts.connect: has no value',
    'gw.yaml:10:1 loging: unknown key "loging" (did you mean "logging"?)'
  ])
})

t.test('a key glued to its value in { } (port:18080) is one problem, saying to add the space', async t => {
  t.same(await issues(t, head('{ host:127.0.0.1, port:18080 }') + UPSTREAMS + `routes:
  r: { match: { path: /a }, upstream: users }
`), [
    'gw.yaml:2:13 server.listen.host:127.0.0.1: "host:127.0.0.1" is read as one key with no value: write `host: 127.0.0.1`, with a space after the colon',
    'gw.yaml:2:29 server.listen.port:18080: "port:18080" is read as one key with no value: write `port: 18080`, with a space after the colon',
    'gw.yaml:6:3 routes: must be an array: start each route with "- ", as in "- name: api" (its match: and upstream: indented under name:)'
  ])
})

t.test('keys: non-ASCII look-alikes are shown escaped and said so; a ${VAR} in a key is said not to be read', async t => {
  t.same(await issues(t, head() + UPSTREAMS + `r\u043eutes: []
`), [
    'gw.yaml:5:1 r\\u043eutes: unknown key "r\\u043eutes", which contains a non-ASCII character (did you mean "routes"?)'
  ])
  t.same(await issues(t, head() + UPSTREAMS + `routes:
  - name: a
    match: { path: /a }
    upstream: users
    stripPrefix\u200b: /a
    \${EXTRA}: 1
`), [
    'gw.yaml:9:5 routes[0].stripPrefix\\u200b: unknown key "stripPrefix\\u200b", which contains a non-ASCII character (did you mean "stripPrefix"?)',
    'gw.yaml:10:5 routes[0].${EXTRA}: unknown key "${EXTRA}" (variables are read in values, not keys)'
  ])
})

t.test('a byte order mark does not shift the columns of line 1', async t => {
  const text = 'server: { listen: { host: 127.0.0.1, port: 0 }, trustProxy: 1, trustProxy: 2 }\n' + UPSTREAMS + 'routes: []\n'
  const expected = ['gw.yaml:1:64 server.trustProxy: key "trustProxy" appears twice in the same map (first on line 1): keep one']
  t.same(await issues(t, text), expected)
  t.same(await issues(t, '\ufeff' + text), expected)
  const unknown = 'server: { listen: { host: 127.0.0.1, port: 0 }, bogus: 1 }\n' + UPSTREAMS + 'routes: []\n'
  t.same(await issues(t, '\ufeff' + unknown), await issues(t, unknown))
  t.same(await issues(t, '\ufeff' + unknown), ['gw.yaml:1:49 server.bogus: unknown key "bogus"'])
})

t.test('target URLs: the mistake is named (no scheme, no ://, a path after the port)', async t => {
  t.same(await issues(t, head() + `upstreams:
  users:
    targets:
      - url: 10.0.0.5:3000
      - url: http:/10.0.0.6:3000
      - url: http://10.0.0.7:3000/api
routes: []
`), [
    'gw.yaml:6:14 upstreams.users.targets[0].url: "10.0.0.5:3000" has no scheme: write http://10.0.0.5:3000 (or https://)',
    'gw.yaml:7:14 upstreams.users.targets[1].url: "http:/10.0.0.6:3000" is missing "://" after "http": write http://10.0.0.6:3000',
    'gw.yaml:8:14 upstreams.users.targets[2].url: "http://10.0.0.7:3000/api" has a path ("/api") after the host and port: a target is an origin only; use the route\'s stripPrefix or rewrite for paths'
  ])
})

t.test('an unknown plugin lists the plugins there are, built-in and loaded, with did-you-mean', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugins-'))
  const api = new URL('../src/index.ts', import.meta.url).href
  writeFileSync(join(dir, 'tenant.mjs'), `import { definePlugin, Type } from '${api}'
export default definePlugin({ name: 'add-tenant', priority: 810, schema: Type.Object({}), setup () { return {} } })
`)
  const found = await issues(t, head() + UPSTREAMS + `loadPlugins: [./tenant.mjs]
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { add-tenants: {} }
`, {}, join(dir, 'gw.yaml'))
  t.equal(found.length, 1)
  t.match(found[0], /routes\[0\]\.plugins\.add-tenants: unknown plugin "add-tenants" \(did you mean "add-tenant"\?\); there are: .*add-tenant.*request-headers.*\(your own are loaded with loadPlugins\)$/)
})
