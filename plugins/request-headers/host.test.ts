import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { fresh } from '../../test/helpers/cache-rig.ts'
import { parseConfig } from '../../src/config/load.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

const ONTO_HOST = 'a client\'s header renamed onto Host would choose the site the upstream serves, past the gateway\'s checks of the client\'s Host ' +
  '(and apart from the Host the cache keys on): set: { host: ... } gives it a fixed value'

t.test('no rename onto Host, in any case (a client header would pick the upstream\'s Host, and poison the cache): a config error saying what to use', async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers:
        rename: { x-original-host: host, x-forwarded-host: HOST, x-site: x-tenant }
`), [
    `gw.yaml:11:36 routes[0].plugins.request-headers.rename.x-original-host: ${ONTO_HOST}`,
    `gw.yaml:11:60 routes[0].plugins.request-headers.rename.x-forwarded-host: ${ONTO_HOST}`
  ])
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  request-headers: { rename: { x-original-host: Host } }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { cache: {} } }
`), [`gw.yaml:6:49 plugins.request-headers.rename.x-original-host: ${ONTO_HOST}`], 'at the top level too')
})

t.test('a Host set to a fixed value goes upstream; the cache keeps the client\'s Host in its key (a finer key: no client gets another Host\'s answer)', async t => {
  let n = 0
  const up = await startUpstream((req, res) => {
    const body = `${++n} for ${String(req.headers.host)}`
    res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': Buffer.byteLength(body) }).end(body)
  })
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
      cache: {}
`)
  t.teardown(() => gw.close())
  const get = async (host: string) => {
    const res = await request(`${gw.url}/page`, { headers: { host } })
    return [await res.body.text(), fresh(String(res.headers['cache-status']))]
  }
  t.same(await get('shop.example'), ['1 for tenant.internal', 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60'])
  t.same(await get('evil.example'), ['2 for tenant.internal', 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60'], 'another client Host: its own entry')
  t.match(await get('shop.example'), ['1 for tenant.internal', /^Portcullis; hit/])
})

t.test('a Host set must be host[:port]: anything else (empty, a space, a tab, a scheme, a path) is a config error at its key', async t => {
  const bad = 'is not host[:port]: a host name (letters, digits, "-" and "_" in labels joined by dots, none empty (one trailing dot allowed)), an IPv4 address or an IPv6 one in brackets, then maybe a port'
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers: { set: { host: "" } }
`), [`gw.yaml:10:39 routes[0].plugins.request-headers.set.host: ${bad}`])
  const values = ['a b', 'evil.com\\tx', 'api.example/x', 'user@api.example', 'http://api.example']
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      request-headers: { set: { Host: "${values[0] as string}" } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { request-headers: { set: { HOST: "${values[1] as string}" } } } }
  - { name: u, match: { path: /u }, upstream: up, plugins: { request-headers: { set: { host: "${values[2] as string}" } } } }
  - { name: v, match: { path: /v }, upstream: up, plugins: { request-headers: { set: { host: "${values[3] as string}" } } } }
  - { name: w, match: { path: /w }, upstream: up, plugins: { request-headers: { set: { host: "${values[4] as string}" } } } }
`), [
    `gw.yaml:10:39 routes[0].plugins.request-headers.set.Host: ${bad}`,
    `gw.yaml:11:94 routes[1].plugins.request-headers.set.HOST: ${bad}`,
    `gw.yaml:12:94 routes[2].plugins.request-headers.set.host: ${bad}`,
    `gw.yaml:13:94 routes[3].plugins.request-headers.set.host: ${bad}`,
    'gw.yaml:14:94 routes[4].plugins.request-headers.set.host: write the host[:port] only, without "http://"'
  ])
  for (const host of ['api.example', 'api.example:8080', 'api.example.', '10.0.0.5:3000', '[::1]:8080', 'tenant_1.internal']) {
    await t.resolves(parseConfig(`${ONE_ROUTE_PLUGINS}      request-headers: { set: { host: "${host}" } }\n`, 'gw.yaml', {}), host)
  }
})
