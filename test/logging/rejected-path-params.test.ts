import t from 'tap'
import { startGateway } from '../helpers/gateway.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { waitForLog } from '../helpers/logs.ts'
import { deadPort } from '../helpers/upstream.ts'

// A refused target's `request rejected` line logged it raw: a path with `;` (or `%3B`, refused as
// bad_path) with its `;api_key=...`, a fragment (refused: 400) with its `#access_token=`, and a
// password's start (the target cut at a `?` it held before its userinfo was hidden), where access
// lines leave out the query for that very reason.
t.test('a refused target is logged without its path parameters, query, fragment or userinfo', async t => {
  const gw = await startGateway(`
upstreams:
  app: { targets: [ { url: "http://127.0.0.1:${await deadPort()}" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app }
`)
  t.teardown(() => gw.close())
  const port = Number(new URL(gw.url).port)
  const cases: Array<[target: string, logged: string]> = [
    ['/k/a;api_key=S3CRET1', '/k/a;…'],
    ['/k/a%3Bjsessionid=S3CRET2/b', '/k/a;…'],
    ['/k/a;x/b?api_key=S3CRET3', '/k/a;…'],
    ['/k/a%2Fb', '/k/a%2Fb'],
    ['/nothere#api_key=S3CRET4', '/nothere#…'],
    ['/k/a?x=1#access_token=S3CRET5', '/k/a'],
    ['http://alice:S3C?RET6@a.example/x', 'http://[redacted]@…'],
    // An authority as a browser reads one (`//`, `/\\`): its userinfo was logged, only a scheme:// one's hidden.
    ['//u:S3CRET7@h.example/x#f', '//[redacted]@h.example/x#…'],
    ['/\\u:S3CRET8@h.example/x;a', '/\\[redacted]@h.example/x;…'],
    ['//u:S3C?RET9@h.example/x#f', '//[redacted]@…'],
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
