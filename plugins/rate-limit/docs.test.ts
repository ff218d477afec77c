import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'

const DOC = new URL('../../docs/plugins/rate-limit.md', import.meta.url)

t.test('the example in docs/plugins/rate-limit.md is a valid config', async t => {
  const yaml = /```yaml\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'))?.[1]
  if (yaml === undefined) throw new Error('no yaml block in the page')
  const loaded = await parseConfig(yaml, 'rate-limit.md', {})
  const routes = loaded.config.routes.map(r => r.name)
  t.same(routes, ['api', 'search'])
  t.match(loaded.config.plugins, { 'rate-limit': { store: 'shared', limits: [{ name: 'burst' }, { name: 'daily' }] } })
  t.same(loaded.config.consumers?.[1]?.metadata, { 'rate-limit': { daily: false } })
})

t.test('mistakes are reported at their line, overrides in consumers[].metadata included', async t => {
  const text = `server:
  listen: { host: 127.0.0.1, port: 0 }
consumers:
  - id: a
    metadata:
      rate-limit: { burst: { requests: 0 }, daily: true }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: r
    match: { path: /* }
    upstream: up
    plugins:
      rate-limit:
        by: [ consumer, "cookie:x" ]
        limits:
          - { name: burst, requests: 10, window: 1500ms }
`
  try {
    await parseConfig(text, 'gw.yaml', {})
    t.fail('the config was accepted')
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    t.same(err.issues.map(formatIssue).sort(), [
      'gw.yaml:15:25 routes[0].plugins.rate-limit.by[1]: must be consumer, ip, route, header:<name> or claim:<name>',
      'gw.yaml:17:50 routes[0].plugins.rate-limit.limits[0].window: must be a whole number of seconds, minutes, hours or days up to 365d, e.g. 1s, 10m, 1d (or milliseconds, a multiple of 1000)',
      'gw.yaml:6:40 consumers[0].metadata.rate-limit.burst.requests: must be >= 1',
      'gw.yaml:6:52 consumers[0].metadata.rate-limit.daily: must be false (no such limit for this consumer) or { requests, window, burst, algorithm }'
    ].sort())
  }
})
