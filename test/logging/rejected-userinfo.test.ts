import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { waitForLog } from '../helpers/logs.ts'
import { deadPort } from '../helpers/upstream.ts'

// A refused target starting with an authority (`//` or `/\`, as a browser reads one) was logged
// with its password: only a `scheme://` URL's userinfo was hidden.
t.test('a refused target of //user:pass@host or /\\user:pass@host is logged without its userinfo', async t => {
  const gw = await startGateway(`
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:${await deadPort()}" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const cases: Array<[target: string, logged: string]> = [
    ['//u:S3CRET1@h.example/x#f', '//[redacted]@h.example/x#…'],
    ['/\\u:S3CRET2@h.example/x;a', '/\\[redacted]@h.example/x;…'],
    ['//u:S3C?RET3@h.example/x#f', '//[redacted]@h.example/x#…'],
    ['//h.example/@name#f', '//h.example/@name#…']
  ]
  for (const [i, [target]] of cases.entries()) {
    const res = await rawRequest(port, [`GET ${target} HTTP/1.1`, 'Host: a.example', `X-Request-Id: r${i}`, 'Connection: close'])
    t.equal(res.status, 400, `${target}: refused`)
  }
  for (const [i, [, logged]] of cases.entries()) {
    t.match(await waitForLog(gw.logs, { msg: 'request rejected', requestId: `r${i}` }), { path: logged })
  }
  t.notOk(/S3C/.test(JSON.stringify(gw.logs)), 'no part of a secret anywhere in the log')
})
