import t from 'tap'
import { request } from 'undici'
import { issues, ONE_ROUTE_PLUGINS } from '../helpers/config-issues.ts'
import { runCliHere } from '../helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

// A secret holding a comma, unquoted in a flow map, is cut there: what follows the comma is read
// as a key with no value, and its problem's path showed it (`admin.SEKRIT: has no value`).
const HEAD = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - { name: r, match: { path: /a }, upstream: up }\n'
const ADMIN = 'admin: { listen: { host: 127.0.0.1, port: 0 }'

t.test('the part of a secret after a comma is hidden in the problem\'s path: beside a secret, under one, in a header map', async t => {
  const cases: Array<[string, string, string]> = [
    ['an admin token', `${HEAD}${ADMIN}, token: abcdefgh0123456789,SEKRIT_ADMIN }\n`, 'admin.[redacted]: has no value'],
    ['a store password', `${HEAD}stores:\n  r: { type: redis, url: "redis://127.0.0.1:1", password: Pa55,SEKRIT_STORE }\n`, 'stores.r.[redacted]: has no value'],
    ['a jwt-auth secret', `${ONE_ROUTE_PLUGINS}      jwt-auth: { secret: abc,SEKRIT_JWT }\n`, 'routes[0].plugins.jwt-auth.[redacted]: has no value'],
    ['a bare value as a key', `${ONE_ROUTE_PLUGINS}      jwt-auth: { SEKRIT_BARE }\n`, 'routes[0].plugins.jwt-auth.[redacted]: has no value'],
    ['in the map of a key naming a secret', `${ONE_ROUTE_PLUGINS}      key-auth: { token: { SEKRIT_TOKEN } }\n`, 'routes[0].plugins.key-auth.token.[redacted]: has no value'],
    ['a header set', `${ONE_ROUTE_PLUGINS}      request-headers: { set: { authorization: Bearer abc,SEKRIT_SET } }\n`, 'routes[0].plugins.request-headers.set.[redacted]: has no value'],
    ['a response header', `${ONE_ROUTE_PLUGINS}      response-headers: { set: { x-api-key: abc,SEKRIT_RESPONSE } }\n`, 'routes[0].plugins.response-headers.set.[redacted]: has no value'],
    ['a name=value part', `${ONE_ROUTE_PLUGINS}      request-headers: { set: { authorization: Digest username="a", response="SEKRIT_DIGEST" } }\n`, 'routes[0].plugins.request-headers.set.response=[redacted]: has no value']
  ]
  for (const [what, text, expected] of cases) {
    const secret = /SEKRIT_\w+/.exec(text)?.[0] as string
    const found = (await issues(t, text)).join('\n')
    t.match(found, expected, what)
    t.notMatch(found, secret, `${what}: not shown`)
  }
  // One starting with a secret's name shows that name, its value hidden, as under credentials.
  t.match((await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers: { set: { authorization: AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=SEKRIT_SIG } }\n`)).join('\n'),
    'request-headers.set.Signature=[redacted]: has no value')
})

t.test('elsewhere, and for keys with a value, keys stay shown: the hints name them', async t => {
  t.same(await issues(t, `${HEAD}${ADMIN}, tokn: abcdefgh0123456789 }\n`), [
    'gw.yaml:7:48 admin.tokn: unknown key "tokn" (did you mean "token"?)'
  ], 'a misspelt key with a value, beside no secret')
  t.same(await issues(t, HEAD.replace('upstreams:\n  up:', 'upstrem:\n  up:')), [
    'gw.yaml:3:1 upstrem: unknown key "upstrem" (did you mean "upstreams"?)'
  ], 'a misspelt section')
  t.same(await issues(t, HEAD.replace('url: "http://127.0.0.1:1" } ]', 'url: "http://127.0.0.1:1" } ], retrys')), [
    'gw.yaml:4:53 upstreams.up.retrys: has no value'
  ], 'a key with no value beside no secret')
})

t.test('the reload answer, GET /config (read token), the log and portcullis validate never show it', async t => {
  const TOKEN = 'admin-token-0123456789abcdef'
  const READ = 'read-token-0123456789abcdef'
  const a = await namedUpstream('a')
  const route = '  - { name: r, match: { path: /r }, upstream: a }'
  const admin = 'admin:\n  listen: { host: 127.0.0.1, port: 0 }'
  const base = gatewayYaml({ a: [a.url] }, route)
  const cf = await configFile(base.replace(admin, `${admin}\n  token: "${TOKEN}"\n  readToken: "${READ}"`))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const bad: Array<[string, string, string]> = [
    ['an admin token', 'SEKRIT_RELOAD_A', `admin: { listen: { host: 127.0.0.1, port: 0 }, token: admin-token-0123,SEKRIT_RELOAD_A, readToken: "${READ}" }`],
    ['a store password', 'SEKRIT_RELOAD_S', `${admin}\n  token: "${TOKEN}"\n  readToken: "${READ}"\nstores:\n  r: { type: redis, url: "redis://127.0.0.1:1", password: Pa55,SEKRIT_RELOAD_S }`]
  ]
  for (const [what, secret, section] of bad) {
    const logged = gw.logs.length
    await cf.write(base.replace(admin, section))
    const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    const answer = await res.body.text()
    t.equal(res.statusCode, 422, `${what}: rejected`)
    t.match(answer, '.[redacted]","message":"has no value"', `${what}: the problem is told`)
    t.notMatch(answer, secret, `${what}: not in the reload answer`)
    const config = await (await request(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${READ}` } })).body.text()
    t.match(config, /"result":"invalid"/, `${what}: GET /config shows the rejected reload`)
    t.notMatch(config, secret, `${what}: not in GET /config`)
    const lines = JSON.stringify(gw.logs.slice(logged))
    t.match(lines, 'config reload rejected')
    t.notMatch(lines, secret, `${what}: not in the log`)
    const validate = await runCliHere('validate', '-c', cf.file)
    t.equal(validate.code, 1)
    t.match(validate.stderr, '.[redacted]: has no value')
    t.notMatch(validate.stdout + validate.stderr, secret, `${what}: nor by portcullis validate`)
  }
})
