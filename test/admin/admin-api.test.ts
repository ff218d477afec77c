import t from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError } from '../../src/config/config-error.ts'
import { issues } from '../helpers/config-issues.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile, waitFor } from '../reload/helpers.ts'

const TOKEN = 'correct-horse-battery-staple'

const ROUTES = `  - name: users
    match: { path: /users/*, methods: [GET] }
    upstream: a
    plugins:
      request-headers: { set: { x-api-key: "sk-live-123", x-gateway: portcullis } }
  - name: user
    match: { host: api.example.com, path: /users/:id, headers: { x-internal-key: hk-789 } }
    upstream: a`

async function json (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}) {
  const res = await request(url, init as never)
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(text) as Record<string, unknown>, text }
}

t.test('admin API without a token', async t => {
  const a = await namedUpstream('a')
  // A store nobody uses, for a URL with a password (a target's userinfo is a config error).
  const cf = await configFile(gatewayYaml({ a: [a.url] }, ROUTES, 'stores:\n  r: { type: redis, url: "redis://svc:s3cr3t@127.0.0.1:1", connectTimeout: 100ms }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const admin = gw.adminUrl as string

  t.same((await json(`${admin}/healthz`)).body, { status: 'ok' })
  t.same((await json(`${admin}/readyz`)).body, { status: 'ready' })

  const config = await json(`${admin}/config`)
  t.equal(config.status, 200)
  t.equal(config.body.hash, gw.gateway.runtime.loaded.hash)
  t.equal(config.body.file, cf.file)
  t.ok(!Number.isNaN(Date.parse(config.body.loadedAt as string)), 'load time is a date')
  t.equal(config.body.lastReload, null, 'no reload attempted yet')
  t.notMatch(config.text, /sk-live-123|s3cr3t|hk-789/, 'secrets never leave')
  t.match(config.body.config, {
    routes: [{ plugins: { 'request-headers': { set: { 'x-api-key': '[redacted]', 'x-gateway': '[redacted]' } } } }, { match: { headers: { 'x-internal-key': '[redacted]' } } }],
    stores: { r: { url: 'redis://[redacted]@127.0.0.1:1' } }
  }, 'secret-looking keys, header values and URL passwords are redacted, the rest is kept')

  const routes = await json(`${admin}/routes`)
  t.match(routes.body.routes, [
    { name: 'user', hosts: ['api.example.com'], path: '/users/:id', upstream: 'a', headers: { 'x-internal-key': '[redacted]' } },
    { name: 'users', hosts: [], path: '/users/*', methods: ['GET', 'HEAD'], plugins: [{ name: 'request-headers', priority: 800, source: 'route' }] }
  ], 'precedence order: the exact host first, though written second; header matchers redacted as in /config')
  t.notMatch(routes.text, /hk-789/)

  const upstreams = await json(`${admin}/upstreams`)
  t.match(upstreams.body, { upstreams: [{ name: 'a', targets: [{ url: `http://127.0.0.1:${a.port}` }] }] })

  const metrics = await request(`${admin}/metrics`)
  t.match(metrics.headers['content-type'], /^text\/plain/)
  const text = await metrics.body.text()
  t.match(text, /# TYPE portcullis_config_reloads_total counter/)
  // At 0 from the start, so that the first failure is an increase the reload alert sees.
  for (const result of ['success', 'invalid', 'failed', 'unchanged']) t.match(text, `\nportcullis_config_reloads_total{result="${result}"} 0\n`, `reloads ${result} at 0`)

  const wrong = await json(`${admin}/config`, { method: 'DELETE' })
  t.equal(wrong.status, 405)
  t.equal(wrong.headers.allow, 'GET, HEAD')
  t.match(wrong.body, { error: 'method_not_allowed' })
  const wrongReload = await json(`${admin}/config/reload`)
  t.equal(wrongReload.status, 405)
  t.equal(wrongReload.headers.allow, 'POST')

  const missing = await json(`${admin}/nope?x=1`)
  t.equal(missing.status, 404)
  t.same(missing.body, { error: 'not_found', message: 'no admin endpoint /nope' })

  const badBody = await json(`${admin}/config/reload`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' })
  t.equal(badBody.status, 400, 'a malformed request is a 4xx with a JSON body')
  t.notMatch(badBody.text, /at .*\.(ts|js):\d+/, 'no stack trace')
})

t.test('admin API with a token from the environment', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, ROUTES).replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', 'admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${ADMIN_TOKEN}"'))
  const gw = await startFromFile(cf.file, { env: { ADMIN_TOKEN: TOKEN } })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const admin = gw.adminUrl as string

  t.equal((await json(`${admin}/healthz`)).status, 200, 'probes stay open')
  t.equal((await json(`${admin}/readyz`)).status, 200)
  for (const [path, method] of [['/config', 'GET'], ['/config/reload', 'POST'], ['/routes', 'GET'], ['/upstreams', 'GET'], ['/metrics', 'GET'], ['/nope', 'GET']]) {
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, 'Bearer ']) {
      const res = await json(`${admin}${path}`, { method, headers: authorization === undefined ? {} : { authorization } })
      t.equal(res.status, 401, `${method} ${path} with ${authorization ?? 'no'} authorization`)
      t.match(res.body, { error: 'unauthorized' })
      t.equal(res.headers['www-authenticate'], 'Bearer realm="portcullis-admin"')
    }
  }
  const ok = await json(`${admin}/config`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(ok.status, 200)
  t.match(ok.body.config, { admin: { token: '[redacted]' } })
  t.notMatch(ok.text, TOKEN)
  const reload = await json(`${admin}/config/reload`, { method: 'POST', headers: { authorization: `bearer ${TOKEN}` } })
  t.equal(reload.status, 200, 'authorized (the scheme is case-insensitive)')
})

t.test('admin.readToken reads (GET, HEAD) and nothing else; admin.token does both', async t => {
  const READ = 'prometheus-may-only-read-this'
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, ROUTES).replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', 'admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${ADMIN_TOKEN}"\n  readToken: "${ADMIN_READ_TOKEN}"'))
  const gw = await startFromFile(cf.file, { env: { ADMIN_TOKEN: TOKEN, ADMIN_READ_TOKEN: READ } })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const admin = gw.adminUrl as string
  const read = { authorization: `Bearer ${READ}` }

  for (const path of ['/config', '/routes', '/upstreams', '/metrics', '/stores']) {
    t.equal((await request(`${admin}${path}`, { headers: read })).statusCode, 200, `GET ${path}`)
    t.equal((await request(`${admin}${path}`, { method: 'HEAD', headers: read })).statusCode, 200, `HEAD ${path}`)
  }
  const config = await json(`${admin}/config`, { headers: read })
  t.match(config.body.config, { admin: { token: '[redacted]', readToken: '[redacted]' } })
  t.notMatch(config.text, READ)
  for (const [method, path] of [['POST', '/config/reload'], ['POST', '/plugins/cache/purge'], ['DELETE', '/config']]) {
    const res = await json(`${admin}${path}`, { method, headers: read })
    t.equal(res.status, 403, `${method} ${path} with the read token`)
    t.same(res.body, { error: 'read_only_token', message: `admin.readToken may only read (GET, HEAD): ${method} needs admin.token` })
  }
  const wrong = await json(`${admin}/metrics`, { headers: { authorization: `Bearer ${READ}x` } })
  t.equal(wrong.status, 401, 'a near miss is no token')
  t.equal((await json(`${admin}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 200, 'the admin token still writes')
})

t.test('admin.readToken needs admin.token and must differ from it', async t => {
  const yaml = gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  []').replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', 'admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${ADMIN_TOKEN:-}"\n  readToken: "${ADMIN_READ_TOKEN:-}"')
  t.same(await issues(t, yaml, { ADMIN_READ_TOKEN: 'read-only-token-123' }), [
    'gw.yaml:6:14 admin.readToken: needs admin.token: without it every admin endpoint is open to anyone, reads and writes alike (from the variable ADMIN_READ_TOKEN)'
  ])
  t.same(await issues(t, yaml, { ADMIN_TOKEN: 'one-token-for-both', ADMIN_READ_TOKEN: 'one-token-for-both' }), [
    'gw.yaml:6:14 admin.readToken: is the same as admin.token: a read-only token must differ, or it could reload and purge (from the variable ADMIN_READ_TOKEN)'
  ])
  t.same(await issues(t, yaml, { ADMIN_TOKEN: 'a-good-admin-token', ADMIN_READ_TOKEN: 'short' }).then(i => i.map(m => m.replace(/^\S+ /, ''))), ['admin.readToken: must NOT have fewer than 16 characters (from the variable ADMIN_READ_TOKEN)'])
  await t.resolves(parseConfig(yaml, 'gw.yaml', { ADMIN_TOKEN: 'a-good-admin-token' }), 'an empty read token is none')
})

t.test('a plugin admin endpoint answers any other method 405 with Allow, as the core paths do', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: ${TOKEN}
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cache: {} } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const admin = gw.adminUrl as string
  const authorization = `Bearer ${TOKEN}`

  // GET and PUT are routed to the plugin endpoints; PATCH, OPTIONS, TRACE and unknown methods are not.
  for (const method of ['GET', 'PUT', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) {
    const res = await json(`${admin}/plugins/cache/purge`, { method, headers: { authorization } })
    t.equal(res.status, 405, `${method} /plugins/cache/purge`)
    t.equal(res.headers.allow, 'POST')
    t.same(res.body, { error: 'method_not_allowed', message: `${method} is not allowed on /plugins/cache/purge (allowed: POST)` })
    const missing = await json(`${admin}/plugins/cache/nope`, { method, headers: { authorization } })
    t.equal(missing.status, 404, `${method} /plugins/cache/nope`)
    t.same(missing.body, { error: 'not_found', message: 'no admin endpoint /plugins/cache/nope' })
  }
  const anonymous = await json(`${admin}/plugins/cache/purge`, { method: 'PATCH' })
  t.equal(anonymous.status, 401, 'the token is checked first')
  t.equal(anonymous.headers.allow, undefined)
})

t.test('readiness ends when shutting down, while requests still drain', async t => {
  let release = () => {}
  const held = new Promise<void>(resolve => { release = resolve })
  const slow = await startUpstream((_req, res) => { void held.then(() => res.end('done')) })
  const cf = await configFile(gatewayYaml({ a: [slow.url] }, ROUTES))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { release(); await Promise.all([slow.close(), cf.remove()]) })

  const inFlight = request(`${gw.url}/users/1`)
  t.ok(await waitFor(() => gw.gateway.runtime.inFlight > 0 ? true : undefined))
  const closing = gw.close()
  t.equal((await json(`${gw.adminUrl}/readyz`)).status, 503)
  t.equal((await json(`${gw.adminUrl}/healthz`)).status, 200, 'alive while draining')
  release()
  const res = await inFlight
  t.equal(await res.body.text(), 'done', 'the in-flight request completes')
  await closing
})

t.test('an admin listener off loopback needs a token', async t => {
  const yaml = gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  []').replace('admin:\n  listen: { host: 127.0.0.1', 'admin:\n  listen: { host: 0.0.0.0')
  const err = await parseConfig(yaml, 'gw.yaml', {}).catch(e => e as ConfigError)
  t.type(err, ConfigError)
  t.match((err as ConfigError).issues, [{ path: 'admin.listen.host', line: 4, message: /reachable from other machines: set admin\.token/ }])
  await t.resolves(parseConfig(yaml.replace('0.0.0.0, port: 0 }\n', '0.0.0.0, port: 0 }\n  token: "0123456789abcdef"\n'), 'gw.yaml', {}))
  // IPv6 loopback, written as listen takes it (brackets are refused: test/config-validation.test.ts).
  await t.resolves(parseConfig(yaml.replace('0.0.0.0', '"::1"'), 'gw.yaml', {}))
  // Loopback however written: 0:0:0:0:0:0:0:1 was "reachable from other machines".
  for (const host of ['0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '0:0:0:0:0:ffff:7f00:1', '127.9.9.9', 'LOCALHOST']) {
    await t.resolves(parseConfig(yaml.replace('0.0.0.0', `"${host}"`), 'gw.yaml', {}), `${host} is loopback`)
  }
  for (const host of ['::', '0:0:0:0:0:0:0:0', '::ffff:10.0.0.1', '0:0:0:0:0:0:0:2']) {
    t.match(await parseConfig(yaml.replace('0.0.0.0', `"${host}"`), 'gw.yaml', {}).catch(e => e as ConfigError), { issues: [{ path: 'admin.listen.host' }] }, `${host} is not`)
  }
})

t.test('an admin token beyond printable ASCII is a config error: a header is read as Latin-1, so it could never match', async t => {
  const yaml = gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  []').replace('admin:\n  listen: { host: 127.0.0.1, port: 0 }', 'admin:\n  listen: { host: 127.0.0.1, port: 0 }\n  token: "${ADMIN_TOKEN}"')
  const ascii = 'gw.yaml:5:10 admin.token: has a character beyond printable ASCII (a letter such as é, a control character): a token sent in a header is read byte by byte as Latin-1, so this one would never match; use printable ASCII (space to ~) (from the variable ADMIN_TOKEN)'
  t.same(await issues(t, yaml, { ADMIN_TOKEN: 'mot-de-passe-sécurisé' }), [ascii], 'a letter beyond ASCII')
  t.same(await issues(t, yaml, { ADMIN_TOKEN: 'tab\tinside-the-token' }), [ascii], 'a control character')
  t.same(await issues(t, yaml, { ADMIN_TOKEN: 'a-token-from-a-file-1234\n' }), [
    'gw.yaml:5:10 admin.token: has white space at its start or end (a trailing newline from a secret file?): remove it; a token sent in a header never has any, so this one would never match (from the variable ADMIN_TOKEN)'
  ], 'a trailing newline gets its own message alone')
  await t.resolves(parseConfig(yaml, 'gw.yaml', { ADMIN_TOKEN: 'every printable ~!@#$%^&*()_+{}|:"<>? ascii' }))
})
