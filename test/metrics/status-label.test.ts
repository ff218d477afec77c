import t from 'tap'
import { request } from 'undici'
import { catchAllYaml } from '../helpers/catch-all.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

// An upstream that answers whatever status the client names (httpbin's /status/:code) must not grow
// portcullis_http_requests_total's label set: unregistered codes count under their class.

t.test("registered codes and 499 are their own status label, any other code its class's", async t => {
  // /CODE answers CODE.
  const up = await startUpstream((req, res) => { res.writeHead(Number(req.url?.slice(1))).end() })
  t.teardown(() => up.close())
  const gw = await startGateway(catchAllYaml(up.url), { admin: true })
  t.teardown(() => gw.close())
  const codes = [200, 299, 298, 418, 429, 498, 499, 503, 555, 599]
  for (const code of codes) {
    const res = await request(`${gw.url}/${code}`)
    t.equal(res.statusCode, code, `${code} relayed as it came`)
    await res.body.dump()
  }
  const text = await (await request(`${gw.adminUrl as string}/metrics`)).body.text()
  const statuses = Object.fromEntries([...text.matchAll(/^portcullis_http_requests_total\{route="all",method="GET",status="([^"]+)"\} (\d+)$/gm)]
    .map(m => [m[1], Number(m[2])]))
  t.same(statuses, { 200: 1, '2xx': 2, 418: 1, 429: 1, '4xx': 1, 499: 1, 503: 1, '5xx': 2 })
})
