import t from 'tap'
import { catchAllGateway } from '../helpers/catch-all.ts'
import { rawRequest } from '../helpers/raw-http.ts'
import { echo } from '../helpers/upstream.ts'

// An absolute-form target with a scheme other than http(s) was a bad_path whose message spoke of
// encoded slashes, NUL and semicolons only, none of which it had; over an upgrade, a bare bad_request.
t.test('a target that is neither a path nor an http(s) URL: 400 bad_path, saying so, upgrade or not', async t => {
  const gw = await catchAllGateway(t, echo)
  const port = Number(new URL(gw.url).port)
  const cases = [
    ['ftp://user:password@host/echo/x', ['Connection: close']],
    ['ftp://host/echo/x', ['Upgrade: websocket', 'Connection: Upgrade']],
    ['*', ['Upgrade: websocket', 'Connection: Upgrade']]
  ] as const
  for (const [target, extra] of cases) {
    const res = await rawRequest(port, [`GET ${target} HTTP/1.1`, 'Host: host', ...extra])
    const name = `${target} ${extra.join(', ')}`
    t.equal(res.status, 400, name)
    t.match(JSON.parse(res.body), { error: 'bad_path', message: /^the request target is neither a path nor an http\(s\) URL/ }, name)
  }
})
