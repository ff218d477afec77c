import t from 'tap'
import { startUpstream } from '../helpers/upstream.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'

// Node's HTTP/1 parser refuses raw bytes outside printable ASCII in a request target; HTTP/2's
// :path lets them through. The path is held to the same rules either way: an overlong `/`
// (`\xC0\xAF`) sent raw never reaches an upstream whose decoder would take it.
t.test('HTTP/2: a :path with raw bytes outside printable ASCII is refused (400 bad_path), as over HTTP/1.1', async t => {
  const seen: string[] = []
  const up = await startUpstream((req, res) => { seen.push(req.url ?? ''); res.end('ok') })
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: admin, match: { path: /admin/* }, upstream: up, plugins: { request-termination: { status: 403 } } }
  - { name: public, match: { path: /* }, upstream: up }
`)
  const session = await connect({ h2c: true })
  for (const path of ['/x\xC0\xAF..\xC0\xAFadmin/x', '/admin\xE9', '/admin\xA0/x', '/caf\u00E9']) {
    const res = await h2Request(session, { ':path': path })
    t.equal(res.status, 400, JSON.stringify(path))
    t.match(res.body.toString(), /"error":"bad_path"/)
  }
  const fine = await h2Request(session, { ':path': '/caf%C3%A9' })
  t.equal(fine.status, 200, 'the same text percent-encoded is a path')
  t.same(seen, ['/caf%C3%A9'], 'nothing else reached the upstream')
})
