import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { headerEditTests } from '../../test/helpers/header-edit-cases.ts'

// The upstream sends the headers; the client reports what reached it.
headerEditTests(t, 'response-headers', async (t, edits, headers) => {
  const up = await startUpstream((_req, res) => { res.writeHead(200, headers).end('ok') })
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      response-headers:${edits}
`)
  t.teardown(() => gw.close())
  const res = await request(`${gw.url}/`)
  await res.body.dump()
  return res.headers
})
