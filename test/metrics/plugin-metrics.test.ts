import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Metrics } from '../../src/metrics/metrics.ts'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { startGateway } from '../helpers/gateway.ts'

t.test('ctx.metrics refuses the gateway\'s own metrics and names that would mix with their samples', async t => {
  const metrics = new Metrics({ defaultMetrics: true })
  const plugin = pluginMetrics(metrics.registry)
  t.throws(() => plugin.counter({ name: 'portcullis_http_requests_total', help: 'forged', labelNames: ['route', 'method', 'status'] }),
    /metric "portcullis_http_requests_total" is one of the gateway's own/, 'a core counter, with its very labels')
  t.throws(() => plugin.gauge({ name: 'portcullis_store_up', help: 'forged', labelNames: ['store'] }), /one of the gateway's own/)
  t.throws(() => plugin.gauge({ name: 'portcullis_http_request_duration_seconds_count', help: 'forged' }),
    /taken by the gateway's own portcullis_http_request_duration_seconds/, 'a sample name of a core histogram')
  t.throws(() => plugin.gauge({ name: 'portcullis_http_requests', help: 'forged' }), /portcullis_http_requests_total/, 'a core counter\'s family')
  t.throws(() => plugin.counter({ name: 'portcullis_process_cpu_seconds_total', help: 'forged' }), /one of the gateway's own/, 'a default process metric')

  const own = plugin.counter({ name: 'portcullis_cache_requests_total', help: 'Cache lookups.', labelNames: ['route', 'status'] })
  const next = pluginMetrics(metrics.registry)
  t.equal(next.counter({ name: 'portcullis_cache_requests_total', help: 'Cache lookups.', labelNames: ['route', 'status'] }), own,
    'the next config\'s plugins get a plugin\'s metric again')
  t.throws(() => next.gauge({ name: 'portcullis_cache_requests_total', help: 'x' }), /another type or other labels/)
})

t.test('a plugin asking for a core metric fails its setup, naming the metric', async t => {
  const file = join(t.testdir({}), 'forger.ts')
  writeFileSync(file, `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: 'forger', priority: 500, schema: Type.Object({}), setup (_config, ctx) {
  ctx.metrics.counter({ name: 'portcullis_http_requests_total', help: 'x', labelNames: ['route', 'method', 'status'] })
  return {}
} })
`)
  const failed = await startGateway(`loadPlugins: [ "${file}" ]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { forger: {} } }
`).then(async gw => { await gw.close(); return undefined }, (err: Error) => err)
  t.match(failed?.message, /forger[\s\S]*metric "portcullis_http_requests_total" is one of the gateway's own/)
})
