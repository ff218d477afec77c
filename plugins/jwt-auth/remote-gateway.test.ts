import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'

// Remote keys behind a real gateway: how long a request may wait for them, and what the load says.
const [known, stranger] = await Promise.all([signingKey('RS256', 'known'), signingKey('RS256', 'stranger')])
const up = await startUpstream()
t.teardown(() => up.close())

t.test('a slow provider and an unknown kid right after start: one fetch waited for, 401 unknown_key, not 504', async t => {
  // Each fetch takes 2 s: within jwks.timeout (2.5 s, below server.pluginTimeout, 3 s), but two would not be.
  let fetches = 0
  const jwks = await startUpstream((_req, res) => {
    fetches++
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [known.jwk] })), 2_000)
  })
  t.teardown(() => jwks.close())
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 3s
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { jwksUri: "${jwks.url}/jwks", audience: api, jwks: { timeout: 2500ms, cooldown: 1s } } } }
`)
  t.teardown(() => gw.close())
  t.ok(await until(() => fetches === 1), 'the fetch at setup is under way')
  const res = await request(`${gw.url}/r`, { headers: { authorization: `Bearer ${await mint(stranger, { sub: 'x', aud: 'api' })}` } })
  const body = await res.body.json() as { error: string }
  t.same([res.statusCode, body.error, res.headers['www-authenticate']], [401, 'invalid_token', 'Bearer realm="portcullis", error="invalid_token", error_description="the token is signed with an unknown key"'])
  t.equal(fetches, 1, 'the request waited for the fetch under way and started none')
})

t.test('remote keys without audience: a warning at load naming the route; none with audience or static keys', async t => {
  const jwks = await startUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [known.jwk] })))
  t.teardown(() => jwks.close())
  const route = (name: string, plugin: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: { jwt-auth: ${plugin} } }`
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('open', `{ jwksUri: "${jwks.url}/jwks" }`)}
${route('bound', `{ jwksUri: "${jwks.url}/jwks", audience: api }`)}
${route('static', `{ keys: [ ${JSON.stringify(known.pem)} ] }`)}
`)
  t.teardown(() => gw.close())
  const msg = 'jwt-auth: remote keys (jwksUri or issuer) without audience: any token the provider signs, for any client, is accepted; set audience to the value your API is registered under'
  t.match(await waitForLog(gw.logs, { msg }), { level: 40, route: 'open' })
  t.same(gw.logs.filter(l => l.msg === msg).map(l => l.route), ['open'], 'once, for that route alone')
})
