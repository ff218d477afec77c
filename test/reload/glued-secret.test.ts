import t from 'tap'
import { request } from 'undici'
import { redactSecrets } from '../../src/config/redact.ts'
import { issues } from '../helpers/config-issues.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './helpers.ts'

const TOKEN = 'admin-token-0123456789abcdef'
const READ = 'read-token-0123456789abcdef'
const ROUTE = '  - { name: api, match: { path: /api }, upstream: a }'
const ADMIN = 'admin:\n  listen: { host: 127.0.0.1, port: 0 }'

t.test('a secret glued to its key in { } is never shown: not in the reload answer, GET /config (read token) nor the log', async t => {
  const a = await namedUpstream('a')
  const base = gatewayYaml({ a: [a.url] }, ROUTE)
  const cf = await configFile(base.replace(ADMIN, `${ADMIN}\n  token: "${TOKEN}"\n  readToken: "${READ}"`))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  const admin = gw.adminUrl as string
  const bad: Array<[string, string, string]> = [
    ['admin token, bare', TOKEN, `admin: { listen: { host: 127.0.0.1, port: 0 }, token:${TOKEN}, readToken: "${READ}" }`],
    ['admin token, quoted, with spaces', 'pass phrase 0123', `admin: { listen: { host: 127.0.0.1, port: 0 }, token:"pass phrase 0123", readToken: "${READ}" }`],
    ['a store password', 'redis-pw-SECRET1', `${ADMIN}\n  token: "${TOKEN}"\n  readToken: "${READ}"\nstores:\n  r: { type: redis, url: "redis://127.0.0.1:1", password:redis-pw-SECRET1 }`]
  ]
  for (const [what, secret, section] of bad) {
    const logged = gw.logs.length
    await cf.write(base.replace(ADMIN, section))
    const res = await request(`${admin}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
    const answer = await res.body.text()
    t.equal(res.statusCode, 422, `${what}: rejected`)
    t.match(answer, /read as one key with no value: write `(token|password): \[redacted\]`/, `${what}: the hint stays, without the value`)
    t.notMatch(answer, secret, `${what}: not in the reload answer`)
    const config = await request(`${admin}/config`, { headers: { authorization: `Bearer ${READ}` } })
    const shown = await config.body.text()
    t.equal(config.statusCode, 200)
    t.match(shown, /"result":"invalid"/, `${what}: GET /config shows the rejected reload`)
    t.notMatch(shown, secret, `${what}: not in GET /config`)
    const lines = JSON.stringify(gw.logs.slice(logged))
    t.match(lines, 'config reload rejected')
    t.notMatch(lines, secret, `${what}: not in the log`)
  }
})

t.test('the hint keeps a value that is no secret', async t => {
  t.same(await issues(t, 'server:\n  listen: { host: 127.0.0.1, port:18080 }\nupstreams: {}\nroutes: []\nstores:\n  r: { type: redis, url: "redis://127.0.0.1:1", username:alice, password:hunter2 }\n'), [
    'gw.yaml:2:30 server.listen.port:18080: "port:18080" is read as one key with no value: write `port: 18080`, with a space after the colon',
    'gw.yaml:6:49 stores.r.username:alice: "username:alice" is read as one key with no value: write `username: alice`, with a space after the colon',
    'gw.yaml:6:65 stores.r.password:[redacted]: "password:[redacted]" is read as one key with no value: write `password: [redacted]`, with a space after the colon'
  ])
})

t.test('redaction: a glued secret-looking key hides its value, in a path or a message; paths and other keys are kept', async t => {
  t.same(redactSecrets({
    a: 'admin.token:abc-123: has no value',
    b: '"password:\'p w\'" is read as one key',
    c: 'x-api-key:k1,apiKey:"k 2"',
    d: 'https://api.example.com/v1/secrets:list',
    e: 'host:127.0.0.1 port:8080 tokenType:bearer'
  }), {
    a: 'admin.token:[redacted]: has no value',
    b: '"password:[redacted]" is read as one key',
    c: 'x-api-key:[redacted],apiKey:[redacted]',
    d: 'https://api.example.com/v1/secrets:list',
    e: 'host:127.0.0.1 port:8080 tokenType:bearer'
  })
})
