import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { startUpstream } from '../helpers/upstream.ts'

// A route matching `x-admin: 1` does not take `X_Admin: 1` (another header to the router), and the
// public route that did passed it on: CGI, Rack and WSGI upstreams read it as HTTP_X_ADMIN, the
// header the guarded route keys on, with none of that route's plugins run.
t.test('a header routes match on never reaches an upstream under another _ spelling', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: guarded, match: { path: /hd/*, headers: { x-admin: "1", x_tenant: "a" } }, upstream: app, plugins: { request-termination: { status: 403 } } }
  - { name: public, match: { path: /* }, upstream: app }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const port = Number(new URL(gw.url).port)
  const send = async (...fields: string[]) => {
    const res = await rawRequest(port, ['GET /hd/x HTTP/1.1', 'Host: a.example', 'Connection: close', ...fields])
    return { status: res.status, headers: res.status === 200 ? Object.keys((JSON.parse(res.body) as { headers: Record<string, string> }).headers) : [] }
  }
  t.equal((await send('X-Admin: 1', 'X_Tenant: a')).status, 403, 'the guarded route takes the spellings it names')
  const sneaked = await send('X_Admin: 1', 'X-Tenant: a', 'X-Other_Name: kept')
  t.equal(sneaked.status, 200, 'another spelling: the public route')
  t.notOk(sneaked.headers.some(h => h === 'x_admin' || h === 'x-tenant'), `neither reaches its upstream (it got ${sneaked.headers.join(', ')})`)
  t.ok(sneaked.headers.includes('x-other_name'), 'other headers with _ are passed on')
  const other = await send('X-Admin: 2', 'X_Tenant: b')
  t.ok(other.headers.includes('x-admin') && other.headers.includes('x_tenant'), `the spellings routes match on are passed on, whatever their value (it got ${other.headers.join(', ')})`)
})

// The other spellings were listed at load (2^dashes: a name of 20 dashes took 7 s and 574 MB) and
// removed from every request on every route: a route matching `x_tenant` took the X-Tenant every
// client sends from the requests of routes that had nothing to do with it, without a word.
t.test('other spellings are removed only from the requests the matching route\'s host, path and methods take; found without listing them; a load warning for a _ name', async t => {
  const up = await startUpstream()
  const long = Array.from({ length: 23 }, (_, i) => `p${i}`).join('-')
  const started = performance.now()
  const gw = await startGateway(`
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: tenant-a, match: { host: a.example, path: /t/*, methods: [GET], headers: { x_tenant: "a" } }, upstream: app }
  - { name: long, match: { path: /long/*, headers: { ${long}: "1" } }, upstream: app }
  - { name: public, match: { path: /* }, upstream: app }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  t.ok(performance.now() - started < 10_000, `a name of 22 dashes loads at once (${Math.round(performance.now() - started)} ms)`)
  const port = Number(new URL(gw.url).port)
  const send = async (line: string, host: string, ...fields: string[]) => {
    const res = await rawRequest(port, [`${line} HTTP/1.1`, `Host: ${host}`, 'Content-Length: 0', 'Connection: close', ...fields])
    t.equal(res.status, 200, `${line} ${host}`)
    return (JSON.parse(res.body) as { headers: Record<string, string> }).headers
  }
  t.notOk('x-tenant' in await send('GET /t/x', 'a.example', 'X-Tenant: a'), 'the route\'s host, path and method: removed (another route took it)')
  const own = await send('GET /t/x', 'a.example', 'X_Tenant: a', 'X-Tenant: b')
  t.ok('x_tenant' in own && !('x-tenant' in own), 'the route\'s own request: the matched spelling only')
  t.equal((await send('GET /other', 'a.example', 'X-Tenant: a'))['x-tenant'], 'a', 'another path: kept')
  t.equal((await send('GET /t/x', 'b.example', 'X-Tenant: a'))['x-tenant'], 'a', 'another host: kept')
  t.equal((await send('POST /t/x', 'a.example', 'X-Tenant: a'))['x-tenant'], 'a', 'another method: kept')
  const mixed = long.replaceAll('-', (_, at: number) => at % 3 === 0 ? '_' : '-').toUpperCase()
  t.notOk(mixed.toLowerCase() in await send('GET /long/x', 'z.example', `${mixed}: 1`), 'a long name\'s mixed spelling: removed on its route\'s path')
  t.equal((await send('GET /x', 'z.example', `${mixed}: 1`))[mixed.toLowerCase()], '1', 'kept elsewhere')
  t.match(gw.logs.filter(l => String(l.msg).includes('matches a header with _')), [{ level: 40, route: 'tenant-a', header: 'x_tenant', removed: 'x-tenant and its other _ spellings' }], 'one warning, for the _ name')
})
