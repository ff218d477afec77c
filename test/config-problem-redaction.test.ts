import t from 'tap'
import { request } from 'undici'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'
import { runCliHere } from './helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './reload/helpers.ts'

const HEAD = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n'
const route = (fields: string) => `${HEAD}  - { name: r, ${fields} }\n`

// Hidden as a glued secret key (`path "/a/:token:[redacted]"`, `unknown upstream "token:[redacted]"`): the name to fix was lost.
t.test('a config problem quotes route paths and upstream names whole, colons and secret-looking words included', async t => {
  t.same(await issues(t, route('match: { path: "/a/:token:id" }, upstream: up')), [
    'gw.yaml:6:31 routes[0].match.path: path "/a/:token:id": ":token:id" is not a valid param name'
  ])
  t.same(await issues(t, route('match: { path: /a }, upstream: token:v2')), [
    'gw.yaml:6:47 routes[0].upstream: unknown upstream "token:v2"; there are: up'
  ])
  t.same(await issues(t, route('match: { path: /a }, upstream: "secret:prod"')), [
    'gw.yaml:6:47 routes[0].upstream: unknown upstream "secret:prod"; there are: up'
  ])
})

t.test('what a config problem may quote of a secret is still hidden', async t => {
  const shown = async (text: string, env: NodeJS.ProcessEnv = {}) => (await issues(t, text, env)).join('\n')
  const hidden = (text: string, secret: string, what: string, mark = '[redacted]') => {
    t.match(text, mark, `${what}: hidden`)
    t.notMatch(text, secret, `${what}: not shown`)
  }
  hidden(await shown(route('match: { path: "/c?token=SECRET_Q" }, upstream: up')), 'SECRET_Q', 'a secret query value in a path')
  hidden(await shown(`${HEAD}  - { name: r, match: { path: /a }, upstream: up }\n`.replace('http://127.0.0.1:1', 'htp://u:SECRET_PW@127.0.0.1:1')), 'SECRET_PW', 'a URL\'s password')
  hidden(await shown(`admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "\${ADMIN_TOKEN:=SECRET_DEFAULT}"\n${HEAD}  - { name: r, match: { path: /a }, upstream: up }\n`), 'SECRET_DEFAULT', 'a secret variable\'s default', 'a ${ in this secret value')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      jwt-auth: { secret: "${JWT_SECRET:=SECRET_UNCLOSED" }\n'), 'SECRET_UNCLOSED', 'one cut short', 'a ${ in this secret value')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      jwt-auth: { secret:SECRET_GLUED }\n'), 'SECRET_GLUED', 'a key glued to its value')
  t.match(await shown(`${HEAD}  - { name: r, match: { path: /a }, upstream: up }\nadmin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "\${ADMIN_TOKEN}"\n`), 'use ${ADMIN_TOKEN:-default} for a default', 'the hint is kept')
})

// `{ password SECRET }` (its colon missing) is read as the key "password SECRET" with no value: the
// path quoted the secret in every output, though GET /config would hide it as a value.
const CONSUMERS = (credentials: string) => `${HEAD}  - { name: r, match: { path: /a }, upstream: up }\nconsumers: [ { id: alice, credentials: ${credentials} } ]\n`

t.test('a secret written as a key, its colon missing, is hidden in the path and the message', async t => {
  t.same(await issues(t, CONSUMERS('{ basic-auth: { username: alice, password SECRET_FLOW } }')), [
    'gw.yaml:7:42 consumers[0].credentials.basic-auth: missing required key "password"',
    'gw.yaml:7:73 consumers[0].credentials.basic-auth.password [redacted]: has no value'
  ])
  t.same(await issues(t, CONSUMERS('{ basic-auth: { username: alice, SECRET_BARE } }')), [
    'gw.yaml:7:42 consumers[0].credentials.basic-auth: missing required key "password"',
    'gw.yaml:7:73 consumers[0].credentials.basic-auth.[redacted]: has no value'
  ], 'under credentials, a key with no value the config does not know is hidden whole')
  t.same(await issues(t, CONSUMERS('{ SECRET_PLUGIN }')), ['gw.yaml:7:42 consumers[0].credentials.[redacted]: has no value'])
  t.same(await issues(t, CONSUMERS('{ password SECRET_MSG: x }')), [
    'gw.yaml:7:42 consumers[0].credentials.password [redacted]: no plugin "password [redacted]" takes credentials (these do: basic-auth, key-auth)'
  ], 'a message quoting the key')
  t.same(await issues(t, CONSUMERS('{ basic-auth: { username: alice, SECRET_TWICE, SECRET_TWICE } }')), [
    'gw.yaml:7:87 consumers[0].credentials.basic-auth.[redacted]: key "[redacted]" appears twice in the same map (first on line 7): keep one'
  ], 'a key written twice')
  t.same(await issues(t, CONSUMERS('{ basic-auth: { username: alice, password: }, key-auht: { keys: [k] } }')), [
    'gw.yaml:7:83 consumers[0].credentials.basic-auth.password: has no value',
    'gw.yaml:7:86 consumers[0].credentials.key-auht: no plugin "key-auht" takes credentials (did you mean "key-auth"?) (these do: basic-auth, key-auth)'
  ], 'a known key with no value, and one written with a value, are shown')

  const shown = async (text: string) => (await issues(t, text)).join('\n')
  const hidden = (text: string, secret: string, expected: string, what: string) => {
    t.match(text, expected, `${what}: hidden`)
    t.notMatch(text, secret, `${what}: not shown`)
  }
  const route = `${HEAD}  - { name: r, match: { path: /a }, upstream: up }\n`
  hidden(await shown(`${route}admin: { listen: { host: 127.0.0.1, port: 0 }, token SECRET_ADMIN }\n`), 'SECRET_ADMIN', 'admin.token [redacted]: has no value', 'an admin token')
  hidden(await shown(`${route}admin: { listen: { host: 127.0.0.1, port: 0 }, readToken=SECRET_READ }\n`), 'SECRET_READ', 'admin.readToken=[redacted]: has no value', 'written with =')
  hidden(await shown(`${route}stores: { r: { type: redis, url: "redis://127.0.0.1:6379", sentinelPassword SECRET_STORE } }\n`), 'SECRET_STORE', 'stores.r.sentinelPassword [redacted]: has no value', 'a store\'s password')
  hidden(await shown(`${route}plugins: { key-auth: { keys SECRET_KEYS } }\n`), 'SECRET_KEYS', 'plugins.key-auth.keys [redacted]: has no value', 'a plugin\'s keys')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      jwt-auth: { secret SECRET_JWT }\n'), 'SECRET_JWT', 'routes[0].plugins.jwt-auth.secret [redacted]: has no value', 'a route plugin\'s secret')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      request-headers: { set: { authorization Bearer SECRET_HEADER } }\n'), 'SECRET_HEADER', 'set.authorization [redacted]: has no value', 'a header set')
  hidden(await shown(`${route}consumers: [ { id: alice, metadata: { secret SECRET_META } } ]\n`), 'SECRET_META', 'consumers[0].metadata.secret [redacted]: has no value', 'a consumer\'s metadata')
  hidden(await shown(`${route}stores: { r: { type: redis, url redis://u:SECRET_URL@h:6379 } }\n`), 'SECRET_URL', 'stores.r.url redis://[redacted]@h:6379: has no value', 'a URL\'s password')
  hidden(await shown(ONE_ROUTE_PLUGINS + '      request-headers: { webhook https://hooks.example/services/SECRET_HOOK }\n'), 'SECRET_HOOK', 'webhook https://hooks.example/[redacted]: has no value', 'a webhook\'s path')
})

t.test('in block style, a secret\'s key without its colon is hinted at without the secret', async t => {
  const block = (lines: string) => `${HEAD}  - { name: r, match: { path: /a }, upstream: up }\nconsumers:\n  - id: alice\n    credentials:\n      basic-auth:\n${lines}`
  t.same(await issues(t, block('        password SECRET_BLOCK\n        username: alice\n')), [
    'gw.yaml:11:9 consumers[0].credentials.basic-auth.password: "password" has no ":" after it: write password: followed by its value'
  ])
  t.same(await issues(t, block('        SECRET_ALONE\n        username: alice\n')), [
    'gw.yaml:11:9 consumers[0].credentials.basic-auth.[redacted]: "[redacted]" has no ":" after it: write [redacted]:'
  ], 'a word alone on its line under credentials')
  t.same(await issues(t, block('        username: alice\n        password SECRET WITH SPACES\n')), [
    'gw.yaml:12:9 Implicit map keys need to be followed by map values'
  ], 'more than one word: YAML\'s message, which quotes nothing')
})

t.test('the reload answer, its log line and portcullis validate hide a secret written as a key', async t => {
  const SECRET = 'SECRET_RELOAD'
  const a = await namedUpstream('a')
  const route = '  - { name: r, match: { path: /r }, upstream: a }'
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.write(gatewayYaml({ a: [a.url] }, `${route}\nconsumers: [ { id: alice, credentials: { basic-auth: { username: alice, password ${SECRET} } } } ]`))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  const answer = await res.body.text()
  t.equal(res.statusCode, 422)
  t.match(answer, '"path":"consumers[0].credentials.basic-auth.password [redacted]"')
  t.notMatch(answer, SECRET)
  t.match(gw.logs.find(l => String(l.msg).startsWith('config reload rejected'))?.msg, 'password [redacted]', 'logged')
  t.notMatch(JSON.stringify(gw.logs), SECRET, 'in no log line')
  const validate = await runCliHere('validate', '-c', cf.file)
  t.equal(validate.code, 1)
  t.match(validate.stderr, 'password [redacted]')
  t.notMatch(validate.stdout + validate.stderr, SECRET, 'nor by portcullis validate')
})
