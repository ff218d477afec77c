import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { headerEditTests } from '../../test/helpers/header-edit-cases.ts'
import { issues } from '../../test/helpers/config-issues.ts'

// The client sends the headers; the echo upstream reports what reached it.
headerEditTests(t, 'request-headers', async (t, edits, headers) => {
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
})

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
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      request-headers:
        rename: { x-flag: X-Anonymous-Consumer, x-user: x_consumer_id, x-consumer-id: x-user-id }
        set: { X-Consumer-Groups: admins }
`), [
    'gw.yaml:11:27 routes[0].plugins.request-headers.rename.x-flag: "X-Anonymous-Consumer" is an identity header, set by auth plugins only',
    'gw.yaml:11:57 routes[0].plugins.request-headers.rename.x-user: "x_consumer_id" is an identity header, set by auth plugins only',
    'gw.yaml:12:35 routes[0].plugins.request-headers.set.X-Consumer-Groups: "X-Consumer-Groups" is an identity header, set by auth plugins only'
  ])
})

t.test('no rename onto a forwarding header, in either spelling (a client header would claim another address); set one, it may', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      request-headers:
        rename: { x-client: X-Real-IP, x-proto: X_Forwarded_Proto, x-real-ip: x-peer }
        set: { x-forwarded-prefix: /api }
`), [
    'gw.yaml:11:29 routes[0].plugins.request-headers.rename.x-client: "X-Real-IP" tells the upstream who the client is: the gateway sets it (server.trustProxy)',
    'gw.yaml:11:49 routes[0].plugins.request-headers.rename.x-proto: "X_Forwarded_Proto" tells the upstream who the client is: the gateway sets it (server.trustProxy)'
  ])
})
