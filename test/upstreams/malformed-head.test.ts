import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { startRawUpstream } from '../helpers/raw-http.ts'

// A response head undici's parser refuses was answered "the upstream could not be reached or broke
// the connection": the operator went looking for a network fault in what is a malformed answer.
const HEADS: Record<string, string[]> = {
  'a four-digit status': ['HTTP/1.1 2000 OK', 'Content-Length: 2', '', 'hi'],
  'a folded header line': ['HTTP/1.1 200 OK', 'X-A: 1', ' folded', 'Content-Length: 2', '', 'hi'],
  'a NUL in a header value': ['HTTP/1.1 200 OK', 'X-A: a\u0000b', 'Content-Length: 2', '', 'hi'],
  'a head over undici\'s limit': ['HTTP/1.1 200 OK', `X-Big: ${'a'.repeat(100_000)}`, 'Content-Length: 2', '', 'hi']
}

for (const [what, response] of Object.entries(HEADS)) {
  t.test(`${what}: 502, said to be a head that could not be passed on`, async t => {
    const up = await startRawUpstream(response)
    const gw = await startGateway(`upstreams:
  u: { targets: [ { url: "${up.url}" } ], retries: false }
routes:
  - { name: r, match: { path: /* }, upstream: u }
`)
    t.teardown(async () => { await gw.close(); await up.close() })
    const res = await request(`${gw.url}/x`)
    t.equal(res.statusCode, 502)
    t.match(await res.body.json(), { error: 'bad_gateway', message: /response head could not be passed on/ })
  })
}
