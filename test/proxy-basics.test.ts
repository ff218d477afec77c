import t from 'tap'
import { request } from 'undici'
import { startUpstream } from './helpers/upstream.ts'
import { startGateway } from './helpers/gateway.ts'

t.test('proxies a matching request and answers 404 JSON otherwise', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`
upstreams:
  users: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: users
    match: { path: /users/* }
    upstream: users
    stripPrefix: /users
`)
  t.teardown(async () => { await gw.close(); await up.close() })

  const ok = await request(`${gw.url}/users/7?x=1`)
  t.equal(ok.statusCode, 200)
  const seen = await ok.body.json() as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/7?x=1', 'prefix stripped, query kept')
  t.equal(seen.headers['x-request-id'], ok.headers['x-request-id'], 'request id sent upstream and echoed')

  const missing = await request(`${gw.url}/orders`)
  t.equal(missing.statusCode, 404)
  t.match(await missing.body.json(), { error: 'no_route', requestId: missing.headers['x-request-id'] })
})

t.test('every method Node parses is routed and proxied, bodies included', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: cache, match: { path: /cache/*, methods: [PURGE] }, upstream: u }
  - { name: dav, match: { path: /dav/*, methods: [PROPFIND, MKCOL, QUERY] }, upstream: u }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const cases = [
    { method: 'PURGE', path: '/cache/x', body: undefined, headers: {} },
    { method: 'PROPFIND', path: '/dav/a', body: '<propfind/>', headers: { 'content-type': 'application/xml' } },
    { method: 'MKCOL', path: '/dav/b', body: undefined, headers: {} },
    { method: 'QUERY', path: '/dav/c', body: 'q=1', headers: {} }
  ]
  for (const c of cases) {
    const res = await request(`${gw.url}${c.path}`, { method: c.method, body: c.body, headers: c.headers })
    t.equal(res.statusCode, 200, `${c.method} proxied`)
    t.match(await res.body.json(), { method: c.method, url: c.path, body: c.body ?? '' })
  }
  const other = await request(`${gw.url}/cache/x`, { method: 'LINK' })
  t.equal(other.statusCode, 405, 'a method no route names: our 405')
  t.equal(other.headers.allow, 'PURGE', 'with the methods routes take for the path')
  t.match(await other.body.json(), { error: 'method_not_allowed', requestId: String })
})

t.test('content types are the upstream\'s business: none is judged or parsed on the way', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: u }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  for (const ct of ['not a media type', 'application/json', undefined]) {
    const res = await request(`${gw.url}/x`, { method: 'POST', body: '{"broken', headers: ct === undefined ? {} : { 'content-type': ct } })
    t.equal(res.statusCode, 200, `content-type ${String(ct)}: passed through`)
    t.match(await res.body.json(), { body: '{"broken' })
  }
})
