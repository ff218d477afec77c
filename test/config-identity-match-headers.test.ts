import t from 'tap'
import { request } from 'undici'
import { issues } from './helpers/config-issues.ts'
import { configFile, namedUpstream, startFromFile } from './reload/helpers.ts'

// Routing reads the client's headers; its identity headers and those jwt-auth forwards claims in
// are removed (and set by the auth plugins) only after. A route matching on one would be chosen by
// whoever sends it: a config error, at the header's key.

const why = (route: string, header: string, what = 'an identity header') => `"${header}" is ${what}: the gateway removes the client's and sets its own ` +
  `only after routing, so route "${route}" would be chosen by whatever a client sends in it, with credentials or without`

t.test('match.headers naming an identity header, in any spelling, or a header a jwt-auth forwards a claim in', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: groups, match: { path: /a, headers: { X-Consumer-Groups: admins } }, upstream: up }
  - { name: id, match: { path: /b, headers: { x_consumer_id: ops, x-tenant: acme } }, upstream: up }
  - { name: anon, match: { path: /c, headers: { X-ANONYMOUS-CONSUMER: "true" } }, upstream: up }
  - { name: claim, match: { path: /d, headers: { X_User_Email: a@example.com } }, upstream: up }
  - name: jwt
    match: { path: /e, headers: { x-tenant: acme } }
    upstream: up
    plugins: { jwt-auth: { secret: "a-shared-secret-of-at-least-32-characters!", forwardClaims: { email: x-user-email } } }
`), [
    `gw.yaml:6:51 routes[0].match.headers.X-Consumer-Groups: ${why('groups', 'X-Consumer-Groups')}`,
    `gw.yaml:7:47 routes[1].match.headers.x_consumer_id: ${why('id', 'x_consumer_id')}`,
    `gw.yaml:8:49 routes[2].match.headers.X-ANONYMOUS-CONSUMER: ${why('anon', 'X-ANONYMOUS-CONSUMER')}`,
    `gw.yaml:9:50 routes[3].match.headers.X_User_Email: ${why('claim', 'X_User_Email', 'set by jwt-auth from what it verified')}`
  ])
})

t.test('a reload to such a config is refused: the old one keeps serving, and the header picks no route', async t => {
  const [admin, pub] = await Promise.all([namedUpstream('admin'), namedUpstream('pub')])
  t.teardown(() => Promise.all([admin.close(), pub.close()]))
  const yaml = (byIdentity: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers: [ { id: ops, groups: [admins], credentials: { key-auth: { keys: ["oooooooooooooooooooo"] } } } ]
upstreams:
  admin: { targets: [ { url: "${admin.url}" } ] }
  pub: { targets: [ { url: "${pub.url}" } ] }
routes:
${byIdentity}  - { name: api, match: { path: /api/* }, upstream: pub, plugins: { key-auth: {} } }
`
  const cf = await configFile(yaml(''))
  t.teardown(() => cf.remove())
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const forged = async () => {
    const res = await request(`${gw.url}/api/x`, { headers: { 'x-consumer-groups': 'admins' } })
    return { status: res.statusCode, body: await res.body.text() }
  }
  t.equal((await forged()).status, 401, 'no credential: refused by key-auth')

  await cf.write(yaml('  - { name: by-identity, match: { path: /api/*, headers: { x-consumer-groups: admins } }, upstream: admin }\n'))
  const status = await gw.reloader.reload('admin')
  t.equal(status.result, 'invalid')
  t.match(status.issues, [{ path: 'routes[0].match.headers.x-consumer-groups', message: why('by-identity', 'x-consumer-groups') }])
  const after = await forged()
  t.equal(after.status, 401, 'the old config serves: still refused')
  t.notOk(after.body.includes('admin'), 'never the admin upstream')
  const ok = await request(`${gw.url}/api/x`, { headers: { 'x-api-key': 'oooooooooooooooooooo' } })
  t.equal(await ok.body.text(), 'pub', 'with the key: the api route')
})
