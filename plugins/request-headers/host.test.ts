import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
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
    return [await res.body.text(), String(res.headers['cache-status'])]
  }
  t.same(await get('shop.example'), ['1 for tenant.internal', 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60'])
  t.same(await get('evil.example'), ['2 for tenant.internal', 'Portcullis; fwd=uri-miss; fwd-status=200; stored; ttl=60'], 'another client Host: its own entry')
  t.match(await get('shop.example'), ['1 for tenant.internal', /^Portcullis; hit/])
})
