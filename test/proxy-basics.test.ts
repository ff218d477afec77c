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
