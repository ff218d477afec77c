import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { headerEditTests } from '../../test/helpers/header-edit-cases.ts'

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
