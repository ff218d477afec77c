import t, { type Test } from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { headerEditTests } from '../../test/helpers/header-edit-cases.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

// The client sends the headers; the echo upstream reports what reached it.
const relay = async (t: Test, edits: string, headers: Record<string, string>): Promise<Record<string, string | undefined>> => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      request-headers:${edits}
`)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/`, { headers })
  return (await res.body.json() as { headers: Record<string, string | undefined> }).headers
}
headerEditTests(t, 'request-headers', relay)

t.test('a Host set by the plugin is what the upstream receives', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      request-headers: { set: { host: tenant.internal } }
`)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/`)
  t.equal((await res.body.json() as { headers: Record<string, string> }).headers.host, 'tenant.internal')
})

t.test('identity headers may be neither set nor renamed to (a client header could pose as the consumer); renamed from, they may', async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers:
        rename: { x-flag: X-Anonymous-Consumer, x-user: x_consumer_id, x-consumer-id: x-user-id }
        set: { X-Consumer-Groups: admins }
`), [
    'gw.yaml:11:27 routes[0].plugins.request-headers.rename.x-flag: "X-Anonymous-Consumer" is an identity header, set by auth plugins only',
    'gw.yaml:11:57 routes[0].plugins.request-headers.rename.x-user: "x_consumer_id" is an identity header, set by auth plugins only',
    'gw.yaml:12:35 routes[0].plugins.request-headers.set.X-Consumer-Groups: "X-Consumer-Groups" is an identity header, set by auth plugins only'
  ])
})

t.test('no rename onto a forwarding header, in either spelling (a client header would claim another address); set one, it may', async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers:
        rename: { x-client: X-Real-IP, x-proto: X_Forwarded_Proto, x-real-ip: x-peer }
        set: { x-forwarded-prefix: /api }
`), [
    'gw.yaml:11:29 routes[0].plugins.request-headers.rename.x-client: "X-Real-IP" tells the upstream who the client is: the gateway sets it (server.trustProxy)',
    'gw.yaml:11:49 routes[0].plugins.request-headers.rename.x-proto: "X_Forwarded_Proto" tells the upstream who the client is: the gateway sets it (server.trustProxy)'
  ])
})

const SECRET = 'a-shared-secret-of-at-least-32-characters!'

t.test('no rename or set onto a header an auth plugin of the config forwards a verified claim in, in either spelling (a client header would pose as the claim)', async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      jwt-auth: { secret: "${SECRET}", forwardClaims: { sub: x-user-id, email: X-User-Email } }
      request-headers:
        rename: { x-note: X-User-Id, x-mail: x_user_email, x-user-id: x-subject }
        set: { x-user-email: forged@example.com }
`), [
    'gw.yaml:12:27 routes[0].plugins.request-headers.rename.x-note: "X-User-Id" carries a claim jwt-auth verified (forwardClaims): set by it only',
    'gw.yaml:12:46 routes[0].plugins.request-headers.rename.x-mail: "x_user_email" carries a claim jwt-auth verified (forwardClaims): set by it only',
    'gw.yaml:13:30 routes[0].plugins.request-headers.set.x-user-email: "x-user-email" carries a claim jwt-auth verified (forwardClaims): set by it only'
  ])
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  request-headers: { rename: { x-note: x-user-id } }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}", forwardClaims: { sub: x-user-id } } } }
  - { name: s, match: { path: /s }, upstream: up }
`), [
    'gw.yaml:6:40 plugins.request-headers.rename.x-note: on routes "r" (/r), "s" (/s): "x-user-id" carries a claim jwt-auth verified (forwardClaims): set by it only'
  ], 'a top-level request-headers: at its key, naming the routes (a claim is removed on every route)')
})

t.test('a claim header forwarded on any route is refused on every route: one that turns jwt-auth off or replaces it, one without auth', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers: [ { id: alice, credentials: { key-auth: { keys: [ alice-key-0123456789abcdef ] } } } ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  jwt-auth: { secret: "${SECRET}", forwardClaims: { email: x-user-email } }
routes:
  - { name: override, match: { path: /override }, upstream: up, plugins: { jwt-auth: { secret: "${SECRET}" }, request-headers: { rename: { x-in: x-user-email } } } }
  - { name: keyonly, match: { path: /keyonly }, upstream: up, plugins: { jwt-auth: false, key-auth: {}, request-headers: { rename: { x-in: X_User_Email } } } }
  - { name: open, match: { path: /open }, upstream: up, plugins: { jwt-auth: false, request-headers: { rename: { x-in: x-user-email } } } }
`), [
    'gw.yaml:9:179 routes[0].plugins.request-headers.rename.x-in: "x-user-email" carries a claim jwt-auth verified (forwardClaims): set by it only',
    'gw.yaml:10:140 routes[1].plugins.request-headers.rename.x-in: "X_User_Email" carries a claim jwt-auth verified (forwardClaims): set by it only',
    'gw.yaml:11:120 routes[2].plugins.request-headers.rename.x-in: "x-user-email" carries a claim jwt-auth verified (forwardClaims): set by it only'
  ], 'a route without auth plugins too: the client\'s is removed there as well')
})

t.test('Host may be neither removed nor renamed from (the client\'s never reaches the plugins): a config error saying what to use', async t => {
  const message = 'the client\'s Host never reaches the upstream as such: it gets the route\'s (the target\'s, preserveHost or hostHeader), ' +
    'which set: { host: ... } replaces; the client\'s is in X-Forwarded-Host (rename that)'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers:
        remove: [ x-a, Host ]
        rename: { HOST: x-orig-host, x-forwarded-host: x-client-host }
`), [
    `gw.yaml:11:24 routes[0].plugins.request-headers.remove[1]: ${message}`,
    `gw.yaml:12:25 routes[0].plugins.request-headers.rename.HOST: ${message}`
  ])
})

t.test('remove takes a header\'s _ spellings too: a CGI, WSGI or PHP upstream reads X_User_Id as X-User-Id', async t => {
  const spellings = ['x-user-id', 'x_user_id', 'x-user_id', 'x_user-id']
  const seen = await relay(t, ' { remove: [ X-User-Id ] }', { ...Object.fromEntries(spellings.map(h => [h, 'admin'])), 'x-user': 'kept' })
  t.same(spellings.filter(h => seen[h] !== undefined), [], 'none reached the upstream')
  t.equal(seen['x-user'], 'kept', 'another name is kept')
})

t.test('set and rename clear the _ spellings of their names too: the upstream gets the value set, and no second one a CGI server would merge', async t => {
  const seen = await relay(t, ' { set: { x-tenant: acme }, rename: { x-from: x-to } }', { x_tenant: 'evil', 'x-tenant': 'evil', x_from: 'sneaky', 'x-from': 'one', x_to: 'sneaky' })
  t.same([seen['x-tenant'], seen.x_tenant, seen['x-to'], seen.x_to, seen.x_from, seen['x-from']], ['acme', undefined, 'one', undefined, undefined, undefined])
})

t.test('a name written with _ clears the client\'s - spelling too: a CGI, WSGI or PHP upstream reads X-Tenant and x_tenant alike', async t => {
  const seen = await relay(t, ' { set: { x_tenant: acme }, remove: [ x_debug ], rename: { x-src: x_dst } }',
    { 'x-tenant': 'evil', x_tenant: 'evil', 'x-debug': '1', 'x-src': 'one', 'x-dst': 'evil', 'x-other': 'kept' })
  t.same([seen.x_tenant, seen['x-tenant'], seen['x-debug'], seen.x_debug, seen.x_dst, seen['x-dst'], seen['x-src'], seen['x-other']],
    ['acme', undefined, undefined, undefined, 'one', undefined, undefined, 'kept'], 'the name set and the name renamed to are the config\'s alone')
})

t.test('X-Request-ID may be neither set, removed nor renamed from or to: the gateway writes the request\'s id after every plugin', async t => {
  const message = 'X-Request-ID (X_Request_ID too, which CGI, WSGI and PHP upstreams read as it) is the gateway\'s: it sends the request\'s id upstream after every plugin has run (the client\'s when short and safe, else a new one), ' +
    'so it cannot be set, removed or renamed from or to'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers:
        remove: [ x-a, X-Request-Id ]
        rename: { x-request-id: x-client-id, x-trace: X-REQUEST-ID, x-b: x-c }
        set: { x-request-id: fixed }
`), [
    `gw.yaml:11:24 routes[0].plugins.request-headers.remove[1]: ${message}`,
    `gw.yaml:12:33 routes[0].plugins.request-headers.rename.x-request-id: ${message}`,
    `gw.yaml:12:55 routes[0].plugins.request-headers.rename.x-trace: ${message}`,
    `gw.yaml:13:30 routes[0].plugins.request-headers.set.x-request-id: ${message}`
  ])
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers:
        remove: [ X_Request_ID ]
        rename: { x_request_id: x-client-id, x-trace: X-Request_Id }
        set: { x_request-id: fixed }
`), [
    `gw.yaml:11:19 routes[0].plugins.request-headers.remove[0]: ${message}`,
    `gw.yaml:12:33 routes[0].plugins.request-headers.rename.x_request_id: ${message}`,
    `gw.yaml:12:55 routes[0].plugins.request-headers.rename.x-trace: ${message}`,
    `gw.yaml:13:30 routes[0].plugins.request-headers.set.x_request-id: ${message}`
  ], 'in any spelling: a CGI, WSGI or PHP upstream reads _ as -')
  // What the message says: the upstream gets the request's id, the one the client gets back.
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up }
`)
  t.teardown(() => gw.close())
  for (const sent of [{ 'x-request-id': 'client-id-1' }, { 'x-request-id': 'not safe!' }, {}]) {
    const res = await request(`${gw.url}/`, { headers: sent })
    const seen = (await res.body.json() as { headers: Record<string, string> }).headers['x-request-id']
    t.equal(seen, res.headers['x-request-id'])
    if (sent['x-request-id'] === 'client-id-1') t.equal(seen, 'client-id-1', 'a safe client id is kept')
  }
})
