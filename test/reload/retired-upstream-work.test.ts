import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { until } from '../helpers/wait.ts'
import { configFile, startFromFile } from './helpers.ts'

// An upstream the new config no longer has stops its health checks (and DNS discovery, and its
// metrics) when the reload puts the new config in service, not when the old one's last request ends.

t.test('a removed upstream\'s health checks stop at the reload, though a request on it is still open', async t => {
  let checks = 0
  let release = (): void => {}
  const old = await startUpstream((req, res) => {
    if (req.url === '/health') { checks++; res.end('ok'); return }
    release = () => res.end('slow')
  })
  const other = await startUpstream()
  const yaml = (upstreams: string, routes: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  other:
    targets: [ { url: "${other.url}" } ]
${upstreams}
routes:
  - { name: other, match: { path: /other }, upstream: other }
${routes}
`
  const cf = await configFile(yaml(`  old:
    targets: [ { url: "${old.url}" } ]
    healthCheck: { path: /health, interval: 250ms }`, '  - { name: old, match: { path: /old }, upstream: old }'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { release(); await gw.close(); await Promise.all([old.close(), other.close(), cf.remove()]) })

  const slow = request(`${gw.url}/old`).then(async r => r.body.text())
  t.ok(await until(() => checks >= 2), 'checked')
  await cf.write(yaml('', ''))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  t.match(await res.body.json(), { result: 'success' })
  const metrics = await (await request(`${gw.adminUrl}/metrics`)).body.text()
  t.notMatch(metrics, /portcullis_upstream_target_healthy\{upstream="old"/, 'the removed upstream is gone from /metrics')
  const atReload = checks
  await new Promise(resolve => setTimeout(resolve, 1_000)) // 4 check intervals: a check would have come
  t.equal(checks, atReload, 'no health check after the reload')
  release()
  t.equal(await slow, 'slow', 'the request open on the removed upstream still completes')
})
