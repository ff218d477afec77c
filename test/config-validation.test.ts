import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../src/config/load.ts'
import { toBytes } from '../src/config/byte-size.ts'
import { toMs } from '../src/config/duration.ts'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'
import { issues } from './helpers/config-issues.ts'

// Lines 1-5; routes written after it start on line 6.
const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
`


t.test('references: unknown upstream, with did-you-mean', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstream: users
  - name: b
    match: { path: /b }
    upstream: user
  - name: c
    match: { path: /c }
    upstream: payments
`), [
    'gw.yaml:11:15 routes[1].upstream: unknown upstream "user" (did you mean "users"?); there are: users',
    'gw.yaml:14:15 routes[2].upstream: unknown upstream "payments"; there are: users'
  ])
  // Not a property every object has.
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstream: constructor
`), ['gw.yaml:8:15 routes[0].upstream: unknown upstream "constructor"; there are: users'])
})

t.test('keys: unknown key at the key itself, missing required key at its object', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstreem: users
  - name: b
    match: { path: /b, method: [GET] }
    upstream: users
  - name: c
    upstream: users
`), [
    'gw.yaml:8:5 routes[0].upstreem: unknown key "upstreem" (did you mean "upstream"?)',
    'gw.yaml:10:24 routes[1].match.method: unknown key "method" (did you mean "methods"?)',
    'gw.yaml:12:5 routes[2]: missing required key "match"'
  ])
})

t.test('values: wrong type, bad duration, bad target url, bad method name', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: abc }
  shutdownTimeout: 5 minutes
upstreams:
  users:
    targets: [ { url: "http://127.0.0.1:3001/api" }, { url: "127.0.0.1:3002" } ]
    connections: many
    timeouts: { connect: -1s }
routes:
  - name: a
    match: { path: a, methods: [GET, "G T"] }
    upstream: users
`), [
    'gw.yaml:2:36 server.listen.port: must be an integer',
    'gw.yaml:3:20 server.shutdownTimeout: must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m (no space between the number and the unit: "5 minutes" is written 5m)',
    'gw.yaml:6:23 upstreams.users.targets[0].url: "http://127.0.0.1:3001/api" has a path ("/api") after the host and port: a target is an origin only; use the route\'s stripPrefix or rewrite for paths',
    'gw.yaml:6:61 upstreams.users.targets[1].url: "127.0.0.1:3002" has no scheme: write http://127.0.0.1:3002 (or https://)',
    'gw.yaml:7:18 upstreams.users.connections: must be an integer',
    'gw.yaml:8:26 upstreams.users.timeouts.connect: must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m (got "-1s")',
    'gw.yaml:11:20 routes[0].match.path: must start with /',
    'gw.yaml:11:38 routes[0].match.methods[1]: must be an HTTP method name such as GET'
  ])
})

t.test('plugins: unknown name at its key, bad config at the offending value or key', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      request-header: { set: { x-a: b } }
      request-headers: { set: [1] }
      response-headers:
        remove: [x-powered-by, "bad header"]
        sett: { x-frame-options: DENY }
`), [
    'gw.yaml:10:7 routes[0].plugins.request-header: unknown plugin "request-header" (did you mean "request-headers"?); there are: acl, basic-auth, cache, compress, cors, ip-filter, jwt-auth, key-auth, opentelemetry, rate-limit, redirect, request-headers, request-size, request-termination, response-headers (your own are loaded with loadPlugins)',
    'gw.yaml:11:31 routes[0].plugins.request-headers.set: must be an object',
    'gw.yaml:13:32 routes[0].plugins.response-headers.remove[1]: must be a valid header name',
    'gw.yaml:14:9 routes[0].plugins.response-headers.sett: unknown key "sett" (did you mean "set"?)'
  ])
})

t.test('matchers: method, path pattern, host pattern', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a, methods: [GET, PSOT] }
    upstream: users
  - name: b
    match: { path: "/users/*/orders" }
    upstream: users
  - name: c
    match: { path: "/a/:x/:x" }
    upstream: users
  - name: d
    match: { path: /a/../b }
    upstream: users
  - name: e
    match: { path: /e, host: [ok.example.com, "api.*.com", "api.example.com:443"] }
    upstream: users
`), [
    'gw.yaml:7:39 routes[0].match.methods[1]: unknown HTTP method "PSOT" (did you mean "POST"?)',
    'gw.yaml:10:20 routes[1].match.path: path "/users/*/orders": "*" may only be a whole last segment (did you mean "/users/:param/orders"?)',
    'gw.yaml:13:20 routes[2].match.path: path "/a/:x/:x": param ":x" appears twice',
    'gw.yaml:16:20 routes[3].match.path: path "/a/../b": not normalized (no //, . or .. segments, or escapes of characters a path holds as they are: letters, digits and -._~!$&\'()*+,=:@)',
    'gw.yaml:19:47 routes[4].match.host[1]: host "api.*.com": only a leading "*." wildcard is allowed',
    'gw.yaml:19:60 routes[4].match.host[2]: host "api.example.com:443": must not include a port'
  ])
})

t.test('matchers that could never match, and upstream paths and Hosts the HTTP client would refuse on every request', async t => {
  t.same(await issues(t, HEAD + `  - { name: a, match: { path: /a, host: "*." }, upstream: users }
  - { name: b, match: { path: /b, host: ["https://api.example.com", "api.example.com/x", "*..example.com"] }, upstream: users }
  - { name: c, match: { path: "/c?x=1" }, upstream: users }
  - { name: d, match: { path: /café }, upstream: users }
  - { name: e, match: { path: /e, methods: [GET, connect] }, upstream: users }
  - { name: f, match: { path: /f, headers: { X-A: "1", x-a: "2" } }, upstream: users }
  - { name: g, match: { path: /g/* }, upstream: users, rewrite: "/x y/*" }
  - { name: h, match: { path: /h/* }, upstream: users, rewrite: "/x?a=1&b=*" }
  - { name: i, match: { path: /i }, upstream: users, hostHeader: "a\\r\\nx-evil: 1" }
  - { name: j, match: { path: /j }, upstream: users, hostHeader: "https://users.internal" }
  - { name: k, match: { path: /k, host: "*.example.com." }, upstream: users, hostHeader: "users.internal:8080", rewrite: /v2/caf%C3%A9 }
`), [
    'gw.yaml:6:41 routes[0].match.host: host "*.": a wildcard needs a domain after "*." (as in *.example.com)',
    'gw.yaml:7:42 routes[1].match.host[0]: host "https://api.example.com": write the host name only, without "https://"',
    'gw.yaml:7:69 routes[1].match.host[1]: host "api.example.com/x": is not a host name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed)), an IPv4 address or an IPv6 one in brackets',
    'gw.yaml:7:90 routes[1].match.host[2]: host "*..example.com": after "*." comes a domain name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed))',
    'gw.yaml:8:31 routes[2].match.path: path "/c?x=1": has a "?": a route matches the path only, the query after it is not matched',
    'gw.yaml:9:31 routes[3].match.path: path "/café": has non-ASCII characters, which clients send percent-encoded as UTF-8: write "/caf%C3%A9"',
    'gw.yaml:10:50 routes[4].match.methods[1]: CONNECT asks for a tunnel, which the gateway never opens (501 not_implemented): no route can match it',
    'gw.yaml:11:56 routes[5].match.headers.x-a: "x-a" repeats "X-A" (header names are case-insensitive): keep one',
    'gw.yaml:12:65 routes[6].rewrite: rewrite "/x y/*": has a space, which no request path has: write it percent-encoded (%20)',
    'gw.yaml:13:65 routes[7].rewrite: rewrite "/x?a=1&b=*": has a "?": a rewrite is a path only, and the client\'s query is forwarded after it as sent',
    'gw.yaml:14:66 routes[8].hostHeader: "a\\r\\nx-evil: 1": is not host[:port]: a host name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed)), an IPv4 address or an IPv6 one in brackets, then maybe a port',
    'gw.yaml:15:66 routes[9].hostHeader: "https://users.internal": write the host[:port] only, without "https://"'
  ], 'and route k, the same kinds of values done right, loads')
})

t.test('names: upstreams, stores and header matchers refuse names they could never mean', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  "shared cache": { type: memory }
upstreams:
  "users!": { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a, headers: { "": x, "x tenant": acme, x-ok: y } }
    upstream: users!
`), [
    'gw.yaml:4:3 stores.shared cache: "shared cache" is not a valid name (letters, digits, _ . -)',
    'gw.yaml:6:3 upstreams.users!: "users!" is not a valid name (letters, digits, _ . -)',
    'gw.yaml:9:35 routes[0].match.headers.: "" is not a header name',
    'gw.yaml:9:42 routes[0].match.headers.x tenant: "x tenant" is not a header name'
  ])
})

t.test('path mapping: rewrite params, stripPrefix, both at once', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: "/users/:id" }
    upstream: users
    rewrite: "/v2/accounts/:uid/*"
  - name: b
    match: { path: /orders/* }
    upstream: users
    stripPrefix: /ord
  - name: c
    match: { path: "/items/:id" }
    upstream: users
    stripPrefix: /items
    rewrite: /v2/items
  - name: d
    match: { path: "/things/:id" }
    upstream: users
    rewrite: "/v2//things/:id"
  - name: e
    match: { path: /d/* }
    upstream: users
    rewrite: "/x/*.."
`), [
    'gw.yaml:9:14 routes[0].rewrite: rewrite "/v2/accounts/:uid/*": uses ":uid", which match.path does not define',
    'gw.yaml:13:18 routes[1].stripPrefix: "/ord" is not a prefix of every path this route matches (/orders/*)',
    'gw.yaml:18:14 routes[2].rewrite: use either stripPrefix or rewrite, not both',
    'gw.yaml:22:14 routes[3].rewrite: rewrite "/v2//things/:id": not normalized (no //, . or .. segments, or escapes of unreserved characters)',
    // `/d/admin/` was sent as `/x/admin/..`.
    'gw.yaml:26:14 routes[4].rewrite: rewrite "/x/*..": "*" followed by "." makes a . or .. segment when the request path ends with "/" (a "*" of "x/" gives /x/x/..), which the upstream would resolve to another path'
  ])
})

t.test('conflicts: duplicate route names, identical matchers', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a, methods: [GET, POST], headers: { X-Tenant: acme } }
    upstream: users
  - name: a
    match: { path: /b }
    upstream: users
  - name: c
    match: { path: /a, methods: [post, get], headers: { x-tenant: acme } }
    upstream: users
`), [
    'gw.yaml:9:11 routes[1].name: route name "a" is already used by routes[0]',
    'gw.yaml:13:12 routes[2].match: matches exactly the same requests as routes[0], so it could never be used'
  ])
  t.same(await issues(t, HEAD + `  - { name: a, match: { path: "/users/:id" }, upstream: users }
  - { name: b, match: { path: "/users/:uid" }, upstream: users }
  - { name: c, match: { path: /x, methods: [GET, HEAD] }, upstream: users }
  - { name: d, match: { path: /x, methods: [GET] }, upstream: users }
`), [
    'gw.yaml:7:23 routes[1].match: matches exactly the same requests as routes[0], so it could never be used',
    'gw.yaml:9:23 routes[3].match: matches exactly the same requests as routes[2], so it could never be used'
  ], 'param names and GET\'s implied HEAD make no difference')
  t.same(await issues(t, HEAD + `  - { name: a, match: { path: /a, host: API.example.com }, upstream: users }
  - { name: b, match: { path: /a, host: api.example.com. }, upstream: users }
  - { name: c, match: { path: /a, host: [x.example.com, "*.Example.com"] }, upstream: users }
  - { name: d, match: { path: /a, host: ["*.example.com", X.example.com.] }, upstream: users }
`), [
    'gw.yaml:7:23 routes[1].match: matches exactly the same requests as routes[0], so it could never be used',
    'gw.yaml:9:23 routes[3].match: matches exactly the same requests as routes[2], so it could never be used'
  ], 'hosts are compared as the router compares them: case and a trailing dot make no difference')
})

t.test('environment: ${VAR} and ${VAR:-default} are substituted, numbers included', async t => {
  const text = `server:
  listen: { host: "\${HOST:-127.0.0.1}", port: "\${PORT:-8080}" }
upstreams:
  users: { targets: [ { url: "http://\${USERS_HOST}:\${USERS_PORT:-3001}" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { request-headers: { set: { x-env: "\${EMPTY:-fallback}" } } }
`
  const withDefaults = await parseConfig(text, 'gw.yaml', { USERS_HOST: 'users.internal', EMPTY: '' })
  t.same(withDefaults.config.server.listen, { host: '127.0.0.1', port: 8080 })
  t.equal(withDefaults.config.upstreams.users?.targets[0]?.url, 'http://users.internal:3001')
  t.same(withDefaults.config.routes[0]?.plugins, { 'request-headers': { set: { 'x-env': 'fallback' } } }, 'an empty variable counts as unset')
  const fromEnv = await parseConfig(text, 'gw.yaml', { HOST: '0.0.0.0', PORT: '9000', USERS_HOST: 'u', USERS_PORT: '81' })
  t.same(fromEnv.config.server.listen, { host: '0.0.0.0', port: 9000 })
  t.equal(fromEnv.config.upstreams.users?.targets[0]?.url, 'http://u:81')
})

t.test('environment: a missing variable is reported at its value, once; an empty one is said to be empty', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: "\${PORT}" }
upstreams:
  users: { targets: [ { url: "\${NOPE}" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { request-headers: { set: { x-key: "\${EMPTY}-\${ALSO_NOPE}" } } }
`, { EMPTY: '' }), [
    'gw.yaml:2:36 server.listen.port: environment variable PORT is not set (use ${PORT:-default} for a default)',
    'gw.yaml:4:30 upstreams.users.targets[0].url: environment variable NOPE is not set (use ${NOPE:-default} for a default)',
    'gw.yaml:9:49 routes[0].plugins.request-headers.set.x-key: environment variable EMPTY is empty (use ${EMPTY:-default} for a default); ' +
      'environment variable ALSO_NOPE is not set (use ${ALSO_NOPE:-default} for a default)'
  ])
})

t.test('environment: a missing variable in a credential or a plugin\'s setting is reported once, not also as too short', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers:
  - { id: a, credentials: { key-auth: { keys: ["\${API_KEY_A}"] } } }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { key-auth: {}, jwt-auth: { secret: "\${JWT_SECRET}" } }
`), [
    'gw.yaml:4:48 consumers[0].credentials.key-auth.keys[0]: environment variable API_KEY_A is not set (use ${API_KEY_A:-default} for a default)',
    'gw.yaml:11:50 routes[0].plugins.jwt-auth.secret: environment variable JWT_SECRET is not set (use ${JWT_SECRET:-default} for a default)'
  ])
})

t.test('environment: a default may hold variables, and $${ is a literal ${', async t => {
  const text = `server:
  listen: { host: 127.0.0.1, port: "\${PORT:-\${FALLBACK_PORT:-8080}}" }
upstreams:
  users: { targets: [ { url: "http://\${USERS_HOST:-\${HOSTNAME_SET}}" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { request-headers: { set: { x-template: "$\${user}-\${TAG:-{v1}}" } } }
`
  const nested = await parseConfig(text, 'gw.yaml', { HOSTNAME_SET: 'h.internal' })
  t.equal(nested.config.server.listen.port, 8080, 'a default inside a default')
  t.equal(nested.config.upstreams.users?.targets[0]?.url, 'http://h.internal', 'a variable inside a default')
  t.same(nested.config.routes[0]?.plugins, { 'request-headers': { set: { 'x-template': '${user}-{v1}' } } }, '$${ stays ${, unexpanded')
  const outer = await parseConfig(text, 'gw.yaml', { PORT: '9000', FALLBACK_PORT: '1', USERS_HOST: 'u' })
  t.equal(outer.config.server.listen.port, 9000)
  t.equal(outer.config.upstreams.users?.targets[0]?.url, 'http://u', 'an unused default needs none of its variables')
  t.same(await issues(t, text, {}), [
    'gw.yaml:4:30 upstreams.users.targets[0].url: environment variable HOSTNAME_SET is not set (use ${HOSTNAME_SET:-default} for a default)'
  ], 'a used default\'s missing variable is reported')
})

t.test('admin.token: shorter than 16 characters, or with white space at either end (a secret file\'s newline), is a config error', async t => {
  const text = `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { port: 0 }
  token: "\${ADMIN_TOKEN}"
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u }
`
  const whiteSpace = 'gw.yaml:5:10 admin.token: has white space at its start or end (a trailing newline from a secret file?): remove it; a token sent in a header never has any, so this one would never match (from the variable ADMIN_TOKEN)'
  t.same(await issues(t, text, { ADMIN_TOKEN: `${'t'.repeat(24)}\n` }), [whiteSpace], 'a trailing newline')
  t.same(await issues(t, text, { ADMIN_TOKEN: ` ${'t'.repeat(24)}` }), [whiteSpace], 'a leading space')
  t.same(await issues(t, text, { ADMIN_TOKEN: 'short' }), ['gw.yaml:5:10 admin.token: must NOT have fewer than 16 characters (from the variable ADMIN_TOKEN)'], 'a secret\'s value is not shown')
  t.equal((await parseConfig(text, 'gw.yaml', { ADMIN_TOKEN: 'a b'.repeat(8) })).config.admin?.token, 'a b'.repeat(8), 'white space inside is kept')
})

t.test('environment: ${VAR:?message} and ${VAR?message} require a variable; the secret is never the literal text', async t => {
  const text = `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { port: 0 }
  token: "\${ADMIN_TOKEN:?ADMIN_TOKEN must be set}"
consumers:
  - { id: mobile, credentials: { key-auth: { keys: ["\${MOBILE_KEY:?required}"] } } }
upstreams:
  users: { targets: [ { url: "http://\${USERS_HOST?}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: users, plugins: { key-auth: {} } }
`
  t.same(await issues(t, text, { MOBILE_KEY: '', USERS_HOST: '' }), [
    // A message under a secret's key is not shown: a default mistaken for ${VAR:?secret} would be.
    'gw.yaml:5:10 admin.token: environment variable ADMIN_TOKEN is not set (its message is not shown: the value is a secret)',
    'gw.yaml:7:53 consumers[0].credentials.key-auth.keys[0]: environment variable MOBILE_KEY is empty (its message is not shown: the value is a secret)',
    'gw.yaml:9:30 upstreams.users.targets[0].url: "http://" has no host (from "http://${USERS_HOST?}")'
  ], 'with a colon an empty variable counts as unset; without one (USERS_HOST) it is set, to nothing')
  t.same(await issues(t, text, { MOBILE_KEY: 'k'.repeat(24) }), [
    'gw.yaml:5:10 admin.token: environment variable ADMIN_TOKEN is not set (its message is not shown: the value is a secret)',
    'gw.yaml:9:30 upstreams.users.targets[0].url: environment variable USERS_HOST is not set'
  ], 'an empty message: the variable alone')
  const set = await parseConfig(text, 'gw.yaml', { ADMIN_TOKEN: 't'.repeat(32), MOBILE_KEY: 'k'.repeat(24), USERS_HOST: 'users.internal' })
  t.equal(set.config.admin?.token, 't'.repeat(32))
  t.equal(set.config.upstreams.users?.targets[0]?.url, 'http://users.internal')
})

t.test('environment: ${VAR-default} uses its default only when the variable is unset, not when it is empty', async t => {
  const text = HEAD + `  - name: a
    match: { path: /a }
    upstream: users
    plugins: { request-headers: { set: { x-a: "[\${TAG-none}]", x-b: "\${PORT-\${FALLBACK:-8080}}" } } }
`
  const unset = await parseConfig(text, 'gw.yaml', {})
  t.same(unset.config.routes[0]?.plugins, { 'request-headers': { set: { 'x-a': '[none]', 'x-b': '8080' } } })
  const empty = await parseConfig(text, 'gw.yaml', { TAG: '', PORT: '1' })
  t.same(empty.config.routes[0]?.plugins, { 'request-headers': { set: { 'x-a': '[]', 'x-b': '1' } } })
  // Once kept as written, this URL was reported as missing "://" ("write http://${U-http://x}").
  const url = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "\${U-http://x}" } ] }
routes: []
`, 'gw.yaml', {})
  t.equal(url.config.upstreams.users?.targets[0]?.url, 'http://x')
})

t.test('environment: any other ${...} is an error at its value, even in a default not used; $${ stays a literal ${', async t => {
  const forms = 'use ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message} or ${VAR?message} ($${ for a literal ${)'
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { port: 0 }
  token: "\${ADMIN_TOKEN:=changeme}"
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:\${PORT:-\${P:+1}}" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { request-headers: { set: { x-a: "\${ TAG }", x-b: "\${1}-$\${1}", x-c: "\${TAG:-x" } } }
`, { ADMIN_TOKEN: 't'.repeat(32), PORT: '3001', TAG: 't' }), [
    // Under a secret's key (a token, a header value) nothing of the value is quoted: a default written
    // there is a secret. Elsewhere the variable's name and operator only: a default may be one anyway.
    `gw.yaml:5:10 admin.token: a \${ in this secret value is not supported: ${forms}`,
    `gw.yaml:7:30 upstreams.users.targets[0].url: "\${P:+...}" is not supported: ${forms}`,
    `gw.yaml:12:47 routes[0].plugins.request-headers.set.x-a: a \${ in this secret value is not supported: ${forms}`,
    `gw.yaml:12:64 routes[0].plugins.request-headers.set.x-b: a \${ in this secret value is not supported: ${forms}`,
    'gw.yaml:12:83 routes[0].plugins.request-headers.set.x-c: a ${ in this secret value has no closing "}" ($${ for a literal ${)'
  ])
})

t.test('an empty value is an error, not a silent 0 or false', async t => {
  t.same(await issues(t, HEAD + '  - name: r\n    match: { path: /x }\n    upstream: users\n    websocket:\n    timeouts: { response: }\n'), [
    'gw.yaml:9:15 routes[0].websocket: has no value',
    'gw.yaml:10:27 routes[0].timeouts.response: has no value'
  ])
})

t.test('an unknown key does not hide the other problems of its route', async t => {
  t.same(await issues(t, HEAD + `  - name: orders-api
    match: { path: /orders/*, methods: [GET, PSOT] }
    upstream: user
    stripPrefx: /orders
`), [
    'gw.yaml:7:46 routes[0].match.methods[1]: unknown HTTP method "PSOT" (did you mean "POST"?)',
    'gw.yaml:8:15 routes[0].upstream: unknown upstream "user" (did you mean "users"?); there are: users',
    'gw.yaml:9:5 routes[0].stripPrefx: unknown key "stripPrefx" (did you mean "stripPrefix"?)'
  ])
})

t.test('plugin credentials and consumer metadata are checked by their plugin\'s schema; one line per mistake', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers:
  - id: a
    credentials:
      key-auth: { keys: [], extra: 1 }
      basic-auth: { username: "a:b", password: plain, extra: 1 }
    metadata:
      rate-limit: { "bad name!": false, burst: { requests: 2, extra: 1 } }
  - id: b
    credentials:
      basic-auth: { username: "", password: "x" }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:9" } ] } }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      key-auth: {}
      basic-auth: {}
      ip-filter: {}
      jwt-auth: { secret: short }
      rate-limit:
        limits:
          - { name: burst, requests: 10, window: 1s }
`), [
    'gw.yaml:6:25 consumers[0].credentials.key-auth.keys: must NOT have fewer than 1 items',
    'gw.yaml:6:29 consumers[0].credentials.key-auth.extra: unknown key "extra"',
    'gw.yaml:7:31 consumers[0].credentials.basic-auth.username: must be non-empty, without ":"',
    'gw.yaml:7:48 consumers[0].credentials.basic-auth.password: must be a scrypt hash ($scrypt$ln=..,r=..,p=..$salt$hash): make one with `portcullis hash-password`',
    'gw.yaml:7:55 consumers[0].credentials.basic-auth.extra: unknown key "extra"',
    'gw.yaml:9:21 consumers[0].metadata.rate-limit.bad name!: "bad name!" is not a limit name (letters, digits, _ . -)',
    'gw.yaml:9:63 consumers[0].metadata.rate-limit.burst.extra: unknown key "extra"',
    // Empty: one line, the field's own message (minLength and pattern both fail).
    'gw.yaml:12:31 consumers[1].credentials.basic-auth.username: must be non-empty, without ":"',
    'gw.yaml:12:45 consumers[1].credentials.basic-auth.password: must be a scrypt hash ($scrypt$ln=..,r=..,p=..$salt$hash): make one with `portcullis hash-password`',
    // An ip-filter with neither list would filter nothing.
    'gw.yaml:21:18 routes[0].plugins.ip-filter: needs allow or deny',
    'gw.yaml:22:27 routes[0].plugins.jwt-auth.secret: must be at least 32 characters (RFC 7518 3.2)'
  ])
})

t.test('YAML syntax errors are reported at their position', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ]
routes: []
`), ['gw.yaml:4:10 upstreams.users: this { is never closed: close it with } (YAML reads on until it finds one, and the next line cannot be inside it)'])
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
server: {}
`), ['gw.yaml:3:1 server: key "server" appears twice in the same map (first on line 1): keep one'])
})

t.test('every problem of a file is reported at once, schema and semantic alike', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstreem: users
  - name: b
    match: { path: /b }
    upstream: user
  - name: c
    match: { path: /c, methods: [GET, FETCH] }
    upstream: users
    plugins: { request-headers: { set: [1] }, no-such-plugin: {} }
  - name: b
    match: { path: 7 }
    upstream: nobody
`), [
    'gw.yaml:8:5 routes[0].upstreem: unknown key "upstreem" (did you mean "upstream"?)',
    'gw.yaml:11:15 routes[1].upstream: unknown upstream "user" (did you mean "users"?); there are: users',
    'gw.yaml:13:39 routes[2].match.methods[1]: unknown HTTP method "FETCH" (did you mean "PATCH"?)',
    'gw.yaml:15:40 routes[2].plugins.request-headers.set: must be an object',
    'gw.yaml:15:47 routes[2].plugins.no-such-plugin: unknown plugin "no-such-plugin"; there are: acl, basic-auth, cache, compress, cors, ip-filter, jwt-auth, key-auth, opentelemetry, rate-limit, redirect, request-headers, request-size, request-termination, response-headers (your own are loaded with loadPlugins)',
    'gw.yaml:17:20 routes[3].match.path: must start with /',
    'gw.yaml:18:15 routes[3].upstream: unknown upstream "nobody"; there are: users'
  ])
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 99999 }
upstreams:
  users: { targets: [] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    timeouts: { response: soon }
`), [
    'gw.yaml:2:36 server.listen.port: must be <= 65535',
    'gw.yaml:4:21 upstreams.users.targets: must NOT have fewer than 1 items',
    'gw.yaml:9:27 routes[0].timeouts.response: must be a duration: milliseconds as a number, or a string such as 500ms, 5s, 2m (got "soon")'
  ])
  // Schema problems outside the routes (a port, an upstream) do not hide the semantic checks.
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: notaport }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ], connections: many }
  orders: { targets: [ { url: "http://127.0.0.1:3002" } ], hashOn: { path: true } }
routes:
  - name: a
    match: { path: /a, methods: [PSOT] }
    upstream: user
    plugins: { nope: {} }
`), [
    'gw.yaml:2:36 server.listen.port: must be an integer',
    'gw.yaml:4:72 upstreams.users.connections: must be an integer',
    'gw.yaml:5:68 upstreams.orders.hashOn: hashOn is only used with balance: consistent-hash',
    'gw.yaml:8:34 routes[0].match.methods[0]: unknown HTTP method "PSOT" (did you mean "POST"?)',
    'gw.yaml:9:15 routes[0].upstream: unknown upstream "user" (did you mean "users"?); there are: orders, users',
    'gw.yaml:10:16 routes[0].plugins.nope: unknown plugin "nope"; there are: acl, basic-auth, cache, compress, cors, ip-filter, jwt-auth, key-auth, opentelemetry, rate-limit, redirect, request-headers, request-size, request-termination, response-headers (your own are loaded with loadPlugins)'
  ])
})

t.test('loadPlugins: user plugins load relative to the config file and validate their own config', async t => {
  const index = new URL('../src/index.ts', import.meta.url).href
  const dir = t.testdir({
    plugins: {
      'stamp.ts': `import { definePlugin, Type } from '${index}'
export default definePlugin({
  name: 'stamp',
  priority: 500,
  schema: Type.Object({ value: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  setup: config => ({ onRequest (req) { req.headers['x-stamp'] = config.value } })
})
`,
      'not-a-plugin.ts': 'export default { name: "nope" }\n',
      'twin.ts': `import { definePlugin, Type } from '${index}'
export default definePlugin({ name: 'request-headers', priority: 1, schema: Type.Object({}), setup: () => ({}) })
`
    }
  })
  const file = join(dir, 'conf', 'gw.yaml')
  const config = (plugins: string, stamp: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [${plugins}]
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: users
    plugins: { stamp: ${stamp} }
`
  const good = await parseConfig(config('../plugins/stamp.ts', '{ value: yes }'), file, {})
  t.equal(good.plugins.get('stamp')?.priority, 500, 'the plugin is registered under its name')

  const up = await startUpstream()
  const gw = await startGateway(config('../plugins/stamp.ts', '{ value: yes }').replace('http://127.0.0.1:3001', up.url), { file })
  t.teardown(async () => { await gw.close(); await up.close() })
  const res = await request(`${gw.url}/a`)
  t.equal((await res.body.json() as { headers: Record<string, string> }).headers['x-stamp'], 'yes', 'the plugin runs on its route')

  t.same(await issues(t, config('../plugins/stamp.ts', '{ value: "", extra: 1 }'), {}, file), [
    `${file}:10:32 routes[0].plugins.stamp.value: must NOT have fewer than 1 characters`,
    `${file}:10:36 routes[0].plugins.stamp.extra: unknown key "extra"`
  ])

  const bad = await issues(t, config('../plugins/stamp.ts, ./missing.ts, ../plugins/not-a-plugin.ts, ../plugins/twin.ts', '{ value: x }'), {}, file)
  t.equal(bad.length, 3)
  t.match(bad[0], `${file}:3:36 loadPlugins[1]: cannot load plugin "./missing.ts": `)
  t.match(bad[0], join(dir, 'conf', 'missing.ts'), 'the message names the resolved path')
  t.equal(bad[1], `${file}:3:50 loadPlugins[2]: cannot load plugin "../plugins/not-a-plugin.ts": its default export is not a definePlugin(...) result`)
  t.equal(bad[2], `${file}:3:78 loadPlugins[3]: plugin "request-headers" is already defined: it is the name of a built-in plugin; give yours another`)
})

t.test('listener hosts may be left out: the gateway binds 0.0.0.0, the admin API loopback', async t => {
  const loaded = await parseConfig(`server:
  listen: { port: 0 }
admin:
  listen: { port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: users }
`, 'gw.yaml', {})
  t.equal(loaded.config.server.listen.host, '0.0.0.0')
  t.equal(loaded.config.admin?.listen.host, '127.0.0.1', 'so no admin token is needed')
})

t.test('a listen host with brackets or a space is refused at validate (start once crashed looking it up as a name)', async t => {
  const listeners = (server: string, admin: string, h2c = '') => `server:
  listen: { host: "${server}", port: 0 }${h2c === '' ? '' : `\n  http2: { h2c: { listen: { host: "${h2c}", port: 0 } } }`}
admin:
  listen: { host: "${admin}", port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: users }
`
  const hint = 'must be an IP address or a host name, without spaces; an IPv6 address without brackets (::1, not [::1])'
  t.same(await issues(t, listeners('[::]', '[::1]', 'not a host')), [
    `gw.yaml:2:19 server.listen.host: ${hint}`,
    `gw.yaml:3:35 server.http2.h2c.listen.host: ${hint}`,
    `gw.yaml:5:19 admin.listen.host: ${hint}`
  ])
  const ok = await parseConfig(listeners('::', '::1'), 'gw.yaml')
  t.equal(ok.config.admin?.listen.host, '::1', '::1 is loopback: no admin token needed')
})

t.test('two listeners on one port and overlapping addresses are refused at validate, naming both keys (start once said another program held it)', async t => {
  const listeners = (server: string, admin: string, h2c = '') => `server:
  listen: { ${server} }${h2c === '' ? '' : `\n  http2: { h2c: { listen: { ${h2c} } } }`}
admin:
  listen: { ${admin} }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: users }
`
  const shared = (key: string, other: string, host: string) => `${key}.port: 8080 is also ${other}.port (on ${host}): two listeners cannot share a port; give this one another`
  t.same(await issues(t, listeners('port: 8080', 'port: 8080')), [`gw.yaml:4:19 ${shared('admin.listen', 'server.listen', '0.0.0.0')}`], 'the gateway\'s 0.0.0.0 takes the admin\'s 127.0.0.1')
  t.same(await issues(t, listeners('host: 127.0.0.1, port: 8080', 'host: 127.0.0.1, port: 8080')), [`gw.yaml:4:36 ${shared('admin.listen', 'server.listen', '127.0.0.1')}`])
  t.same(await issues(t, listeners('host: "::", port: 8080', 'host: 127.0.0.1, port: 8080')), [`gw.yaml:4:36 ${shared('admin.listen', 'server.listen', '::')}`], ':: takes IPv4 too')
  t.same(await issues(t, listeners('port: 8080', 'port: 9000', 'host: 127.0.0.1, port: 8080')), [`gw.yaml:3:52 ${shared('server.http2.h2c.listen', 'server.listen', '0.0.0.0')}`])
  for (const [server, admin] of [['host: 127.0.0.1, port: 8080', 'host: "::1", port: 8080'], ['port: 0', 'port: 0'], ['host: 127.0.0.1, port: 8080', 'host: 127.0.0.2, port: 8080']]) {
    await t.resolves(parseConfig(listeners(server as string, admin as string), 'gw.yaml'), `${server} and ${admin} can both listen`)
  }
})

t.test('YAML aliases: one inside the node it names, or an expansion bomb, is a config error where it is, not a stack overflow', async t => {
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      ip-filter:
        allow: &list
          - 10.0.0.1
          - *list
`), ['gw.yaml:13:13 routes[0].plugins.ip-filter.allow[1]: alias *list is inside the node &list it names: the config would never end'])
  const fine = await parseConfig(HEAD + `  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      ip-filter: { allow: &nets [10.0.0.0/8] }
  - name: b
    match: { path: /b }
    upstream: users
    plugins:
      ip-filter: { allow: *nets }
`, 'gw.yaml', {})
  t.same(fine.config.routes[1]?.plugins?.['ip-filter'], { allow: ['10.0.0.0/8'] }, 'an ordinary alias is fine')
})

t.test('YAML aliases: a thousand routes may alias one plugins map; a deeper bomb is still refused at once', async t => {
  let routes = '  - { name: r0, match: { path: /r0 }, upstream: users, plugins: &common { request-headers: { set: { x-a: "1" } }, cors: { origins: ["https://a.example"] } } }\n'
  for (let i = 1; i <= 1000; i++) routes += `  - { name: r${i}, match: { path: /r${i} }, upstream: users, plugins: *common }\n`
  const loaded = await parseConfig(HEAD + routes, 'gw.yaml', {})
  t.equal(loaded.config.routes.length, 1001)
  t.same(loaded.config.routes[1000]?.plugins?.['request-headers'], { set: { 'x-a': '1' } })
  // Thirty levels of ten: 10^30 values, counted from the 300 written rather than expanded (expanded, it would never end).
  const levels = Array.from({ length: 30 }, (_, i) => `        l${i + 1}: &l${i + 1} [${Array(10).fill(`*l${i}`).join(', ')}]`).join('\n')
  t.match(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstream: users
    plugins:
      request-termination:
        l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
${levels}
`), [/^gw\.yaml:12:18 aliases expand the config to more than 1,000,000 values \(\d+ are written\): write the values out, or use fewer aliases$/])
  t.same(await issues(t, HEAD + `  - name: a
    match: { path: /a }
    upstream: users
    plugins: *common
  - name: b
    match: { path: /b }
    upstream: users
    plugins: &common {}
`), ['gw.yaml:9:14 routes[0].plugins: alias *common names no anchor above it: &common comes after it, and an anchor must come before its aliases'])
})

/** A config with `middle` (lines 3 on) between the listener and one upstream with one route, `plugins` on it. */
const around = (middle: string, plugins = '{}') => `server:
  listen: { host: 127.0.0.1, port: 0 }
${middle}
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: users, plugins: ${plugins} }
`

t.test('server.trustProxy: each entry an address, a range or a proxy-addr name, at its line (it once threw at start)', async t => {
  t.same(await issues(t, around('  trustProxy: [10.0.0.0/8, loopback, proxy.internal, 10.0.0.0/40]')), [
    'gw.yaml:3:38 server.trustProxy[2]: invalid IP address: proxy.internal (an address, a CIDR range, or loopback, linklocal, uniquelocal)',
    'gw.yaml:3:54 server.trustProxy[3]: invalid range on address: 10.0.0.0/40 (an address, a CIDR range, or loopback, linklocal, uniquelocal)'
  ])
})

t.test('sizes of LRU indexes allocated whole are bounded (1e15 once passed, then threw at start, or at the first request)', async t => {
  t.same(await issues(t, around('stores:\n  big: { type: memory, maxEntries: 1000000000000000 }', `{ jwt-auth: { secret: "${'s'.repeat(40)}", cacheSize: 1000000000000000 } }`)), [
    'gw.yaml:4:36 stores.big.maxEntries: must be <= 10000000',
    'gw.yaml:8:140 routes[0].plugins.jwt-auth.cacheSize: must be <= 10000000'
  ])
})

t.test('a store\'s problem is named at its key, by the type it says it is (not "must be memory or redis")', async t => {
  t.same(await issues(t, around('stores:\n  local: { type: memory, maxBytes: 10 }\n  shared: { type: redis, url: "http://x", db: -1 }')), [
    'gw.yaml:4:36 stores.local.maxBytes: must be a size of at least 1 KiB: bytes as a number, or a string such as 512KiB, 10MB, 1GiB',
    'gw.yaml:5:31 stores.shared.url: must be a redis:// or rediss:// URL',
    'gw.yaml:5:47 stores.shared.db: must be >= 0'
  ])
})

t.test('a Redis URL is parsed at check time, its password never shown (such URLs once passed, then crashed start)', async t => {
  const found = await issues(t, around(['stores:', '  a: { type: redis, url: "redis://:pa#ss@127.0.0.1:6396" }', '  b: { type: redis, url: "redis://127.0.0.1:99999" }',
    '  c: { type: redis, url: "redis://bad host:6379" }', '  d: { type: redis, url: "redis://[::1:6379" }', '  e: { type: redis, url: "${R}" }'].join('\n')), { R: 'rediss://u:s3cr%t@h:6379/db' })
  t.same(found, [
    'gw.yaml:4:26 stores.a.url: "redis://[redacted]@127.0.0.1:6396" is not a valid URL: percent-encode # ? / @ and spaces in the user or password (# as %23, @ as %40), or give the password in the password key',
    'gw.yaml:5:26 stores.b.url: "redis://127.0.0.1:99999": port 99999 is out of range (1-65535)',
    'gw.yaml:6:26 stores.c.url: "redis://bad host:6379" is not a valid URL: the host has a space',
    'gw.yaml:7:26 stores.d.url: "redis://[::1:6379" is not a valid URL: an IPv6 address needs its closing bracket, e.g. redis://[::1]:6379',
    'gw.yaml:8:26 stores.e.url: "rediss://[redacted]@h:6379/db": the path can only be a database number, e.g. /0 (from "${R}")'
  ])
  t.notMatch(found.join('\n'), /pa#ss|s3cr/, 'no password in any message')
  const ok = await parseConfig(around('stores:\n  a: { type: redis, url: "rediss://u:p%23ss@[::1]:6379/2" }'), 'gw.yaml')
  t.ok(ok.config.stores?.a, 'a well-formed URL (IPv6, encoded password, database) is accepted')
})

t.test('a target URL with a user or password is an error at its line (they were silently dropped), the password not shown', async t => {
  const found = await issues(t, `server: { listen: { port: 0 } }
upstreams:
  a: { targets: [ { url: "http://user:pw@10.0.0.1:80/" }, { url: "https://TOKEN@10.0.0.2" }, { url: "http://u:p#w@10.0.0.3" } ] }
routes:
  - { name: a, match: { path: / }, upstream: a }
`)
  const hint = 'has a user or password, which would not be sent: set an Authorization header with the request-headers plugin instead'
  t.same(found, [
    `gw.yaml:3:26 upstreams.a.targets[0].url: "http://[redacted]@10.0.0.1:80/" ${hint}`,
    `gw.yaml:3:66 upstreams.a.targets[1].url: "https://[redacted]@10.0.0.2" ${hint}`,
    `gw.yaml:3:101 upstreams.a.targets[2].url: "http://[redacted]@10.0.0.3" ${hint}`
  ])
  t.notMatch(found.join('\n'), /pw|TOKEN|p#w/)
})

t.test('a target URL the URL parser refuses (a port past 65535, a space in the host) is an error at its line (it once crashed validate and start)', async t => {
  t.same(await issues(t, `server: { listen: { port: 0 } }
upstreams:
  a: { targets: [ { url: "http://10.0.0.5:99999" }, { url: "http://a b" }, { url: "http://[::1:80" }, { url: "http://10.0.0.5:65535" } ] }
routes:
  - { name: a, match: { path: / }, upstream: a }
`), [
    'gw.yaml:3:26 upstreams.a.targets[0].url: "http://10.0.0.5:99999": port 99999 is out of range (at most 65535)',
    'gw.yaml:3:60 upstreams.a.targets[1].url: "http://a b" is not a valid URL: check its host (a name, an IPv4 address or an [IPv6] one, no spaces) and port',
    'gw.yaml:3:83 upstreams.a.targets[2].url: "http://[::1:80" is not a valid URL: check its host (a name, an IPv4 address or an [IPv6] one, no spaces) and port'
  ])
})

t.test('a mistyped target or store URL is quoted with its user, password and query values hidden, whatever the mistake', async t => {
  const urls = ['htp://svc:SECRETPW@127.0.0.1:1', 'svc:SECRETPW@127.0.0.1:1', 'http:/svc:SECRETPW@127.0.0.1:1', 'redis://svc:SECRETPW@127.0.0.1:1',
    'http://127.0.0.1:1/x?token=SECRETTOK&a=SECRETA', 'http://svc:SECRET/PW@127.0.0.1:1', 'http://127.0.0.1:1?SECRETKEY']
  const found = await issues(t, `server: { listen: { port: 0 } }
upstreams:
${urls.map((url, i) => `  u${i}: { targets: [ { url: "${url}" } ] }`).join('\n')}
stores:
  s: { type: redis, url: "redis://svc:SECRET/PW@127.0.0.1:1?password=SECRETQ" }
routes:
  - { name: a, match: { path: / }, upstream: u0 }
`)
  t.same(found, [
    'gw.yaml:3:27 upstreams.u0.targets[0].url: "htp://[redacted]@127.0.0.1:1": the scheme must be http:// or https://, not htp://',
    'gw.yaml:4:27 upstreams.u1.targets[0].url: "[redacted]@127.0.0.1:1" has no scheme: write http://[redacted]@127.0.0.1:1 (or https://)',
    'gw.yaml:5:27 upstreams.u2.targets[0].url: "http:/[redacted]@127.0.0.1:1" is missing "://" after "http": write http://[redacted]@127.0.0.1:1',
    'gw.yaml:6:27 upstreams.u3.targets[0].url: "redis://[redacted]@127.0.0.1:1": the scheme must be http:// or https://, not redis://',
    'gw.yaml:7:27 upstreams.u4.targets[0].url: "http://127.0.0.1:1/x?token=[redacted]&a=[redacted]" has a path ("/x?token=[redacted]&a=[redacted]") after the host and port: ' +
      'a target is an origin only; use the route\'s stripPrefix or rewrite for paths',
    'gw.yaml:8:27 upstreams.u5.targets[0].url: "http://[redacted]@127.0.0.1:1" has a user or password, which would not be sent: set an Authorization header with the request-headers plugin instead',
    'gw.yaml:9:27 upstreams.u6.targets[0].url: "http://127.0.0.1:1?[redacted]" has a path ("?[redacted]") after the host and port: a target is an origin only; use the route\'s stripPrefix or rewrite for paths',
    'gw.yaml:11:26 stores.s.url: "redis://[redacted]@127.0.0.1:1?password=[redacted]" is not a valid URL: percent-encode # ? / @ and spaces in the user or password (# as %23, @ as %40), or give the password in the password key'
  ])
  t.notMatch(found.join('\n'), /SECRET|svc/)
})

/** Passwords as people write them in a URL, unencoded: each holds SEC and RET, which no message may show. */
const TRICKY_PASSWORDS = ['SEC?RET!', 'SEC#RET', 'SEC/RET', 'SEC RET', 'SEC@RET', 'SEC:RET', 'SËC✓RET', 'S?E#C/R@E:T w']

t.test('a password with any of # ? / @ : a space or non-ASCII is hidden whole in store, node and target URL problems (a ? or a space once showed it)', async t => {
  const esc = (pw: string) => pw.replace(/"/g, '\\"')
  const found = await issues(t, `server: { listen: { port: 0 } }
upstreams:
${TRICKY_PASSWORDS.map((pw, i) => `  u${i}: { targets: [ { url: "http://user:${esc(pw)}@127.0.0.1:3000" } ] }`).join('\n')}
stores:
${TRICKY_PASSWORDS.map((pw, i) => `  r${i}: { type: redis, url: "redis://user:${esc(pw)}@127.0.0.1:99999" }\n  q${i}: { type: redis, url: "redis://:${esc(pw)}@127.0.0.1:6379/0?db=1" }`).join('\n')}
  c: { type: redis, cluster: ["SECRET@10.0.0.1:6379"] }
routes:
  - { name: a, match: { path: / }, upstream: u0 }
`)
  const hint = 'has a user or password, which would not be sent: set an Authorization header with the request-headers plugin instead'
  const messages = found.map(line => line.replace(/^gw\.yaml:\d+:\d+ /, ''))
  for (const [i, pw] of TRICKY_PASSWORDS.entries()) {
    t.ok(messages.includes(`upstreams.u${i}.targets[0].url: "http://[redacted]@127.0.0.1:3000" ${hint}`), `target, ${pw}`)
    t.ok(messages.includes(`stores.r${i}.url: "redis://[redacted]@127.0.0.1:99999": port 99999 is out of range (1-65535)`), `store, ${pw}`)
  }
  // Valid URLs but for the ? # or / they hold (a space, @, : and non-ASCII are encoded by the URL parser).
  for (const i of [0, 1, 2, 7]) {
    t.ok(messages.includes(`stores.q${i}.url: "redis://[redacted]@127.0.0.1:6379/0?db=[redacted]" is not a valid URL: percent-encode # ? / @ and spaces in the user or password (# as %23, @ as %40), or give the password in the password key`), `store, ${TRICKY_PASSWORDS[i]}`)
  }
  t.ok(messages.includes('stores.c.cluster[0]: must be host:port only: give the user and password in the username and password keys'), 'a node with a password')
  t.notMatch(found.join('\n'), /SEC|RET|S\?E/, 'no part of any password')
  // Sentinel nodes are host:port: each refused (by the schema, or for its @), none quoted.
  for (const pw of TRICKY_PASSWORDS) {
    const node = await issues(t, around(`stores:\n  s: { type: redis, name: m, sentinels: ["${esc(pw)}@10.0.0.1:26379"] }`))
    t.match(node, [/^gw\.yaml:4:\d+ stores\.s\.sentinels\[0\]: must be host:port/], `sentinel, ${pw}`)
    t.notMatch(node.join('\n'), /SEC|RET|S\?E/)
  }
})

t.test('a store URL: a port that is not a number is said so, the password hidden (a space in it once showed it whole)', async t => {
  t.same(await issues(t, around('stores:\n  r: { type: redis, url: "redis://:pa ss@127.0.0.1:abc" }')), [
    'gw.yaml:4:26 stores.r.url: "redis://[redacted]@127.0.0.1:abc": the port "abc" is not a number'
  ])
})

t.test('sizes take units (64MiB, 1MB, 512 KiB) wherever bytes are asked for; the least size holds for both forms', async t => {
  const route = (plugins: string) => around('stores:\n  local: { type: memory, maxBytes: 64MiB }', plugins)
  const accepted = await parseConfig(route('{ cache: { maxObjectSize: 1MB }, compress: { minSize: 512 KiB } }'), 'gw.yaml')
  t.match(accepted.config.routes[0]?.plugins, { cache: { maxObjectSize: '1MB' }, compress: { minSize: '512 KiB' } })
  t.same([toBytes('1MB'), toBytes('512 KiB'), toBytes('64MiB'), toBytes('1.5kb'), toBytes(7)], [1_000_000, 524_288, 67_108_864, 1500, 7])
  t.same(await issues(t, around('stores:\n  local: { type: memory, maxBytes: 1KB }', '{ cache: { maxObjectSize: 0KiB } }')), [
    'gw.yaml:4:36 stores.local.maxBytes: must be a size of at least 1 KiB: bytes as a number, or a string such as 512KiB, 10MB, 1GiB',
    'gw.yaml:8:89 routes[0].plugins.cache.maxObjectSize: must be a size of at least 1 byte: bytes as a number, or a string such as 512KiB, 10MB, 1GiB'
  ])
  t.same(await issues(t, route('{ cache: { maxObjectSize: 1 megabyte } }')), [
    'gw.yaml:8:89 routes[0].plugins.cache.maxObjectSize: must be a size of at least 1 byte: bytes as a number, or a string such as 512KiB, 10MB, 1GiB'
  ])
})

t.test('durations: ms, s, m, h and d; longer than a Node timer can wait (2^31-1 ms) is an error at its line (it once fired after 1 ms)', async t => {
  const text = (connect: string, request: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ], timeouts: { connect: ${connect} } }
routes:
  - { name: a, match: { path: /a }, upstream: users, timeouts: { request: ${request} }, plugins: { cache: { defaultTtl: 365d, keepStale: 30d } } }
`
  const accepted = await parseConfig(text('24d', '2147483647'), 'gw.yaml')
  t.match(accepted.config.upstreams.users?.timeouts, { connect: '24d' })
  t.same([toMs('1.5d'), toMs('24d'), toMs('2h'), toMs('2147483.647s')], [129_600_000, 2_073_600_000, 7_200_000, 2_147_483_647])
  const tooLong = (v: string) => `${v} is too long: at most 24 days (2147483647 ms), as Node's timers cannot wait longer; use 0 for no limit where that is allowed`
  t.same(await issues(t, text('30d', '2147483648')), [
    `gw.yaml:4:80 upstreams.users.timeouts.connect: ${tooLong('30d')}`,
    `gw.yaml:6:75 routes[0].timeouts.request: ${tooLong('2147483648')}`
  ])
  t.same(await issues(t, text('"${CONNECT}"', '2147483.648s'), { CONNECT: '3000000000' }), [
    `gw.yaml:4:80 upstreams.users.timeouts.connect: ${tooLong('3000000000')} (from "\${CONNECT}")`,
    `gw.yaml:6:75 routes[0].timeouts.request: ${tooLong('2147483.648s')}`
  ], 'from a variable, and with a fraction')
})

t.test('an upstream\'s keepAlive and timeouts.connect may not be 0 (keepAlive: 0 once failed every request with 500); the response timeouts and queue.max may', async t => {
  const text = (keys: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ], ${keys} }
routes:
  - { name: a, match: { path: /a }, upstream: users }
`
  t.same(await issues(t, text('keepAlive: 0, timeouts: { connect: 0.2ms }')), [
    'gw.yaml:4:70 upstreams.users.keepAlive: must be more than 0: idle connections are kept at least 1ms (which closes them almost at once)',
    'gw.yaml:4:94 upstreams.users.timeouts.connect: must be more than 0: it is how long a new connection may take to open'
  ])
  await parseConfig(text('keepAlive: 1ms, timeouts: { connect: 1ms, response: 0, idle: 0, request: 0 }, queue: { max: 0, timeout: 0 }'), 'gw.yaml')
})

t.test('server.keepAliveTimeout and clientTimeouts.headers may not be 0 (keepAliveTimeout: 0 was 72s at start, no timeout after a reload); clientTimeouts.body and send may', async t => {
  const text = (server: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
  ${server}
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: users }
`
  t.same(await issues(t, text('keepAliveTimeout: 0s\n  clientTimeouts: { headers: 0.2ms }')), [
    'gw.yaml:3:21 server.keepAliveTimeout: must be more than 0: idle connections are never kept forever (leave it out for 72s)',
    'gw.yaml:4:30 server.clientTimeouts.headers: must be more than 0: a client that never finishes its headers would hold its connection for good (leave it out for 30s)'
  ])
  t.same(await issues(t, text('keepAliveTimeout: 0')), ['gw.yaml:3:21 server.keepAliveTimeout: must be more than 0: idle connections are never kept forever (leave it out for 72s)'])
  const accepted = await parseConfig(text('keepAliveTimeout: 1ms\n  clientTimeouts: { headers: 1ms, body: 0, send: 0s }'), 'gw.yaml')
  t.match(accepted.config.server.clientTimeouts, { body: 0, send: '0s' }, '0 is no limit for the body\'s pauses and the send')
})
