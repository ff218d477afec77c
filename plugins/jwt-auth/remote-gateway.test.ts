import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { MISSING_KID_WARNING } from './held-keys.ts'

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

t.test('a provider down at start, then up: with cooldown 1d the gateway retries within seconds (Retry-After says so), then an unknown-kid flood fetches nothing', async t => {
  let fetches = 0
  // The first two fetches fail (the provider is starting), the rest serve the set.
  const jwks = await startUpstream((_req, res) => {
    if (++fetches <= 2) res.writeHead(503).end('down')
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [known.jwk] }))
  })
  t.teardown(() => jwks.close())
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { jwksUri: "${jwks.url}/jwks", audience: api, jwks: { cooldown: 1d } } } }
`)
  t.teardown(() => gw.close())
  const answer = async (key: typeof known) => {
    const res = await request(`${gw.url}/r`, { headers: { authorization: `Bearer ${await mint(key, { sub: 'x', aud: 'api' })}` } })
    await res.body.dump()
    return { status: res.statusCode, retryAfter: res.headers['retry-after'] }
  }
  t.ok(await until(() => fetches === 1), 'the fetch at setup failed')
  const early = await answer(known)
  t.equal(early.status, 503)
  t.ok(Number(early.retryAfter) >= 1 && Number(early.retryAfter) <= 2, `Retry-After ${String(early.retryAfter)}: the backoff before any set (1 s, doubling to 30 s), not the day of the cooldown`)
  t.ok(await until(() => fetches === 3, 10_000), 'retried 1 s, then 2 s later: the third fetch gets the set')
  t.equal((await answer(known)).status, 200, 'the gateway recovered')
  const flood = await Promise.all(Array.from({ length: 20 }, () => answer(stranger)))
  t.same(new Set(flood.map(r => r.status)), new Set([401]), 'unknown kids refused')
  t.equal(fetches, 3, 'a set held: the cooldown (1d) limits unknown-kid fetches again, none within it')
})

t.test('tokens without kid: refused without a signature check when every key has a kid; keys without kid tried 3 at most', async t => {
  const named = await Promise.all(Array.from({ length: 5 }, (_, i) => signingKey('ES512', `es-${i}`)))
  const unnamed = await Promise.all(Array.from({ length: 5 }, () => signingKey('RS256')))
  const jwks = await startUpstream((req, res) => {
    const keys = req.url === '/named' ? named.map(k => k.jwk) : unnamed.map(k => ({ ...k.jwk, kid: undefined }))
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }))
  })
  t.teardown(() => jwks.close())
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: named, match: { path: /named }, upstream: up, plugins: { jwt-auth: { jwksUri: "${jwks.url}/named", audience: api } } }
  - { name: unnamed, match: { path: /unnamed }, upstream: up, plugins: { jwt-auth: { jwksUri: "${jwks.url}/unnamed", audience: api } } }
  - { name: static, match: { path: /static }, upstream: up, plugins: { jwt-auth: { keys: [ ${JSON.stringify(named[0]?.jwk)} ], audience: api } } }
`)
  t.teardown(() => gw.close())
  const answer = async (path: string, key: typeof known, kid?: string) => {
    const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${await mint(key, { sub: 'x', aud: 'api' }, { kid })}` } })
    await res.body.dump()
    return [res.statusCode, res.headers['www-authenticate']]
  }
  const refused = (description: string) => [401, `Bearer realm="portcullis", error="invalid_token", error_description="${description}"`]
  t.same(await answer('/named', named[0] as typeof known, 'es-0'), [200, undefined], 'a token naming its key')
  t.same(await answer('/named', named[0] as typeof known), refused('the token names no kid, and every key of the set has one'), 'without kid: missing_kid')
  t.same(await answer('/named', named[1] as typeof known), refused('the token names no kid, and every key of the set has one'))
  const said = gw.logs.filter(l => l.msg === MISSING_KID_WARNING)
  t.same(said.map(l => [l.level, l.url]), [[40, `${jwks.url}/named`]], 'said once, naming the key set')
  t.same(await answer('/static', named[0] as typeof known), refused('the token names no kid, and every key of the set has one'), 'static JWKs alike')
  t.same(await answer('/static', named[0] as typeof known), refused('the token names no kid, and every key of the set has one'))
  t.same(gw.logs.filter(l => l.msg === MISSING_KID_WARNING).map(l => [l.route, l.keys, l.url]), [['named', undefined, `${jwks.url}/named`], ['static', 'keys', undefined]], 'once for the static set too')
  t.same(await answer('/unnamed', unnamed[2] as typeof known), [200, undefined], 'keys without kid: the third is tried')
  t.same(await answer('/unnamed', unnamed[4] as typeof known), refused('more keys fit the token than are tried, and none of those tried verifies it'), 'the fifth is not')
  t.match(await gw.metrics.registry.metrics(), /portcullis_auth_failures_total\{route="unnamed",plugin="jwt-auth",reason="too_many_keys"\} 1/)
  t.match(await gw.metrics.registry.metrics(), /portcullis_auth_failures_total\{route="named",plugin="jwt-auth",reason="missing_kid"\} 2/)
})

t.test('routes naming one source with other jwks settings: one fetch at start, one per cooldown under a flood of unknown kids', async t => {
  let fetches = 0
  const jwks = await startUpstream((_req, res) => { fetches++; res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [known.jwk] })) })
  t.teardown(() => jwks.close())
  const routes = [1, 2, 3, 4, 5].map(i => `  - { name: r${i}, match: { path: /r${i} }, upstream: up, plugins: { jwt-auth: { jwksUri: "${jwks.url}/jwks", audience: api, jwks: { timeout: ${i}s, cooldown: 1h } } } }`)
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${routes.join('\n')}
`)
  t.teardown(() => gw.close())
  const status = async (path: string, key: typeof known) => {
    const res = await request(`${gw.url}${path}`, { headers: { authorization: `Bearer ${await mint(key, { sub: 'x', aud: 'api' })}` } })
    await res.body.dump()
    return res.statusCode
  }
  for (let i = 1; i <= 5; i++) t.equal(await status(`/r${i}`, known), 200)
  t.equal(fetches, 1, 'one fetch at start for the five routes')
  for (let i = 1; i <= 5; i++) t.equal(await status(`/r${i}`, stranger), 401)
  t.equal(fetches, 1, 'the cooldown counts from the fetch at start, on every route: no unknown kid fetches')
})
