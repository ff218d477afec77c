import t from 'tap'
import { startUpstream } from '../helpers/upstream.ts'
import { h2Request, startH2Gateway } from '../helpers/http2.ts'

// nghttp2 holds an http(s) request's :path to origin form, not another scheme's: `:scheme: ftp` with
// `:path: http://evil.example/x` was routed for evil.example (X-Forwarded-Host too), :authority
// overridden, as an HTTP/1.1 absolute-form target overrides Host. HTTP/2's host is :authority's.
t.test('HTTP/2: a :path that is not a path is refused (400 bad_path), a :scheme other than http(s) too (400 bad_request)', async t => {
  const seen: string[] = []
  const up = await startUpstream((req, res) => { seen.push(`${req.headers['x-forwarded-host'] as string} ${req.url as string}`); res.end('ok') })
  t.teardown(() => up.close())
  const { connect } = await startH2Gateway(t, '{ h2c: { listen: { host: 127.0.0.1, port: 0 } } }', `upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: all, match: { path: /* }, upstream: up }
`)
  const session = await connect({ h2c: true })
  const send = async (scheme: string, path: string) => {
    const res = await h2Request(session, { ':scheme': scheme, ':authority': 'localhost', ':path': path })
    return res.status === 200 ? 200 : `${res.status} ${(JSON.parse(res.body.toString()) as { error: string }).error}`
  }
  t.equal(await send('ftp', 'http://evil.example/x'), '400 bad_path', 'absolute-form')
  t.equal(await send('ftp', 'evil.example:80'), '400 bad_path', 'authority-form')
  t.equal(await send('ftp', '/x'), '400 bad_request', 'a scheme that is not http(s)')
  t.equal(await send('HTTP', '/ok'), 200, 'schemes are case-insensitive')
  t.same(seen, ['localhost /ok'], 'nothing else reached the upstream')
})
