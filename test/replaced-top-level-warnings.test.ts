import t from 'tap'
import { request } from 'undici'
import { startGateway } from './helpers/gateway.ts'
import { startUpstream } from './helpers/upstream.ts'
import { runCliHere } from './helpers/run-cli.ts'

const config = (url: string) => `plugins:
  ip-filter: { deny: [127.0.0.0/8] }
  request-size: { maxBody: 100 }
routes:
  - { name: g, match: { path: /g }, upstream: u }
  - { name: r, match: { path: /r }, upstream: u, plugins: { ip-filter: { allow: [127.0.0.1] }, request-size: { maxUrl: 4096 } } }
  - { name: kept, match: { path: /kept }, upstream: u, plugins: { ip-filter: { allow: [127.0.0.1], deny: [127.0.0.0/8] } } }
upstreams:
  u: { targets: [ { url: "${url}" } ] }
`

t.test('a route entry that replaces a top-level one and loses its deny or a limit: warned at start and by validate', async t => {
  const up = await startUpstream()
  const gw = await startGateway(config(up.url))
  t.teardown(async () => { await gw.close(); await up.close() })
  const post = async (path: string) => { const res = await request(`${gw.url}${path}`, { method: 'POST', body: 'x'.repeat(5000) }); await res.body.dump(); return res.statusCode }
  t.equal(await post('/g'), 403, 'the top-level deny')
  t.equal(await post('/r'), 200, 'replaced: neither the deny nor the limit applies')
  const warned = gw.logs.filter(l => l.level === 40 && typeof l.plugin === 'string').map(l => [l.route, l.plugin, l.msg])
  t.same(warned, [
    ['r', 'ip-filter', 'route "r": its ip-filter replaces the top-level one (the two are not merged): the top-level deny of 127.0.0.0/8; repeat in the route\'s entry what it should keep'],
    ['r', 'request-size', 'route "r": its request-size replaces the top-level one (the two are not merged): maxBody goes up from 100 to 1MiB (the default); repeat in the route\'s entry what it should keep']
  ], 'none for "kept", which repeats the deny')

  const dir = t.testdir({ 'gateway.yaml': `server:\n  listen: { host: 127.0.0.1, port: 0 }\n${config(up.url)}` })
  const run = await runCliHere('validate', '-c', `${dir}/gateway.yaml`)
  t.equal(run.code, 0)
  // At the route's entry: file:line:column and its key path.
  t.match(run.stderr, /gateway\.yaml:\d+:\d+ warning: routes\[\d+\]\.plugins\.ip-filter: route "r": its ip-filter replaces the top-level one .*deny of 127\.0\.0\.0\/8/)
  t.match(run.stderr, /gateway\.yaml:\d+:\d+ warning: routes\[\d+\]\.plugins\.request-size: route "r": its request-size replaces .*maxBody goes up from 100 to 1MiB/)
})
