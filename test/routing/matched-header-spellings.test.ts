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
