import t from 'tap'
import { request } from 'undici'
import { runCliHere } from '../helpers/run-cli.ts'
import { issues } from '../helpers/config-issues.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

const TOKEN = 'write-token-0123456789'
const READ = 'read-only-token-123456'
// Shaped as a Windows path (word characters, a `\`, a `.name` at the end): the hint quoted it back whole.
const SECRET = 'Xk9\\qPz7-long.secretvalue'
const admin = (token: string) => `  token: "${token}"\n  readToken: "${READ}"`

// A read-only holder learnt the write token from lastReload; so did the log and `portcullis validate`.
t.test('a bad escape in a secret is said at its line and key path, never quoted: the reload answer, lastReload, the log, validate', async t => {
  const a = await namedUpstream('a')
  const routes = '  - { name: r, match: { path: /r }, upstream: a }'
  const cf = await configFile(gatewayYaml({ a: [a.url] }, routes, admin(TOKEN)))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.write(gatewayYaml({ a: [a.url] }, routes, admin(SECRET)))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  const answer = await res.body.text()
  t.equal(res.statusCode, 422)
  const issue = { line: 5, col: 14, path: 'admin.token', message: 'Invalid escape sequence: in double quotes \\ starts an escape; write single quotes, or / in a path' }
  t.match(JSON.parse(answer), { issues: [issue] }, 'the problem is said, at its key path')
  const config = await (await request(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${READ}` } })).body.text()
  t.match(JSON.parse(config), { lastReload: { issues: [issue] } }, 'lastReload, to the read token')
  const rejected = gw.logs.find(l => String(l.msg).startsWith('config reload rejected'))
  t.match(rejected?.msg, 'admin.token: Invalid escape sequence', 'logged')
  const validate = await runCliHere('validate', '-c', cf.file)
  t.equal(validate.code, 1)
  t.match(validate.stderr, `${cf.file}:5:14 admin.token: Invalid escape sequence: in double quotes \\ starts an escape; write single quotes, or / in a path`)
  // Nor any piece of it: the escape sequence yaml names (`\q`) is the secret's too.
  for (const piece of ['qPz7', 'secretvalue', '\\q']) {
    t.notMatch(answer + config + JSON.stringify(gw.logs) + validate.stdout + validate.stderr, piece, `"${piece}" shown nowhere`)
  }
})

const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`

t.test('a bad escape under any key GET /config hides is not quoted: a basic-auth password, a header value, a variable\'s default', async t => {
  t.same(await issues(t, HEAD + `consumers:
  - id: bot
    credentials:
      basic-auth: { username: bot, password: "pa\\ss_w0rd.Final" }
routes: []
`), ['gw.yaml:8:49 consumers[0].credentials.basic-auth.password: Invalid escape sequence: in double quotes \\ starts an escape; write single quotes, or / in a path'])
  t.same(await issues(t, HEAD + `routes:
  - name: r
    match: { path: /r }
    upstream: users
    plugins:
      request-headers: { set: { x-upstream-key: "C:\\keys\\upstream.key" } }
`), ['gw.yaml:10:52 routes[0].plugins.request-headers.set.x-upstream-key: Invalid escape sequence: in double quotes \\ starts an escape; write single quotes, or / in a path'])
  // An unquoted ${VAR} in { }: its default is the secret where the key is one (DB_PW names none).
  t.same(await issues(t, HEAD + `routes:
  - name: r
    match: { path: /r }
    upstream: users
    plugins:
      request-headers: { set: { x-db: \${DB_PW:-s3cr3t-default} } }
`), ['gw.yaml:10:39 ${DB_PW:-...} inside { } or [ ] must be quoted: "${DB_PW:-...}" (YAML reads its "{" as the start of a map)'])
  // A Windows path under a key that is none is still quoted back, with its key path.
  t.same(await issues(t, HEAD.replace('  listen: { host: 127.0.0.1, port: 0 }\n', '  listen: { host: 127.0.0.1, port: 0 }\n  tls: { certificates: [ { cert: "C:\\certs\\server.pem", key: k.pem } ] }\n') + 'routes: []\n'), [
    'gw.yaml:3:37 server.tls.certificates[0].cert: Invalid escape sequence \\c: in double quotes \\ starts an escape; write \'C:\\certs\\server.pem\' (single quotes) or "C:/certs/server.pem"'
  ])
})

// Unquoted, a token starting with *, > or | was an alias or a block scalar whose error quoted it whole;
// one starting with ! was an unknown tag, the token "" (no token: the admin API open on loopback).
t.test('a secret written unquoted as an alias, a block scalar or a tag is an error at its key path, never quoted', async t => {
  const a = await namedUpstream('a')
  const routes = '  - { name: r, match: { path: /r }, upstream: a }'
  const cf = await configFile(gatewayYaml({ a: [a.url] }, routes, admin(TOKEN)))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  const cases = [
    { token: '*NewWriteTokenAliasS3cret', col: 10, message: 'this alias names no anchor above it (a value starting with * is an alias: quote it if it is text)' },
    { token: '>NewWriteTokenFoldS3cret', col: 10, message: 'a value starting with | or > is a block scalar, whose header holds only + or - and a digit: quote the value if it is text' },
    { token: '|NewWriteTokenFoldS3cret', col: 10, message: 'a value starting with | or > is a block scalar, whose header holds only + or - and a digit: quote the value if it is text' },
    { token: '!Xq7pL2mN9vR4tY8wZ3kJ', col: 10, message: 'a tag YAML cannot resolve: a value starting with ! is a YAML tag (quote the value if it is text)' }
  ]
  for (const { token, col, message } of cases) {
    await cf.write(gatewayYaml({ a: [a.url] }, routes, `  token: ${token}\n  readToken: "${READ}"`))
    const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    const answer = await res.body.text()
    t.equal(res.statusCode, 422, `${token[0] as string}: refused`)
    const issue = { line: 5, col, path: 'admin.token', message }
    t.match(JSON.parse(answer), { issues: [issue] }, 'said at its key path')
    const config = await (await request(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${READ}` } })).body.text()
    t.match(JSON.parse(config), { lastReload: { issues: [issue] } }, 'lastReload, to the read token')
    const rejected = gw.logs.filter(l => String(l.msg).startsWith('config reload rejected')).at(-1)
    t.match(rejected?.msg, `admin.token: ${message}`, 'logged')
    const validate = await runCliHere('validate', '-c', cf.file)
    t.equal(validate.code, 1)
    t.match(validate.stderr, `${cf.file}:5:${col} admin.token: ${message}`)
    const secret = token.slice(1)
    for (const piece of [secret, secret.slice(0, 8), secret.slice(-8)]) {
      t.notMatch(answer + config + JSON.stringify(gw.logs) + validate.stdout + validate.stderr, piece, `"${piece}" shown nowhere`)
    }
  }
  // The write token still guards the admin API: a reload without it is refused.
  const bare = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  await bare.body.dump()
  t.equal(bare.statusCode, 401)
})

t.test('yaml\'s messages are said without the text they quote: a stray token, a directive', async t => {
  t.same(await issues(t, HEAD + 'routes: []\nadmin:\n  token: ]Xq7pL2mN9vR4tY8wZ3kJ\n'), ['gw.yaml:7:10 Unexpected flow-seq-end token in YAML stream'])
  t.same(await issues(t, '%YAML Xq7pL2mN9vR4tY8wZ3kJ\n---\n' + HEAD + 'routes: []\n'), ['gw.yaml:1:7 Unsupported YAML version'])
  // Alone, such a token was "": no token, the admin API open on loopback.
  t.same(await issues(t, HEAD + 'routes: []\nadmin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: !Xq7pL2mN9vR4tY8wZ3kJ\n'), [
    'gw.yaml:8:10 admin.token: a tag YAML cannot resolve: a value starting with ! is a YAML tag (quote the value if it is text)'
  ])
  // An unknown tag anywhere is an error, at its key path, the tag not quoted.
  t.same(await issues(t, HEAD.replace('[ { url', '[ !target { url') + 'routes: []\n'), [
    'gw.yaml:4:23 upstreams.users.targets[0]: a tag YAML cannot resolve: a value starting with ! is a YAML tag (quote the value if it is text)'
  ])
})
