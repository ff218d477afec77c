import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { request } from 'undici'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { configFile, gatewayYaml, startFromFile } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'

// A counter named without _total was portcullis_x_hits in the Prometheus text format and
// portcullis_x_hits_total in OpenMetrics (prom-client adds the suffix): one series, two names.

t.test('a plugin counter must end in _total; other kinds need not', async t => {
  const metrics = pluginMetrics(new Registry()).forPlugin('x')
  t.throws(() => metrics.counter({ name: 'portcullis_x_hits', help: 'x' }), { message: 'counter "portcullis_x_hits" of plugin x must be named <what>_total: portcullis_x_hits_total' })
  t.ok(metrics.counter({ name: 'portcullis_x_hits_total', help: 'x' }))
  t.ok(metrics.gauge({ name: 'portcullis_x_in_flight', help: 'x' }))
  t.ok(metrics.histogram({ name: 'portcullis_x_wait_seconds', help: 'x' }))
})

const PLUGIN = `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: 'x', priority: 500, schema: Type.Object({ metric: Type.String() }), setup (config, ctx) {
  const hits = ctx.metrics.counter({ name: config.metric, help: 'Hits.' })
  return { onRequest () { hits.inc() } }
} })
`

t.test('in a gateway: the setup fails, naming the plugin, the route and the name to use; with _total, both formats name it alike', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const config = (metric: string) => gatewayYaml({ u: [up.url] }, `  - { name: r, match: { path: /r }, upstream: u, plugins: { x: { metric: ${metric} } } }`, 'loadPlugins: [ ./x.ts ]')
  const cf = await configFile(config('portcullis_x_hits_total'))
  t.teardown(() => cf.remove())
  writeFileSync(join(cf.dir, 'x.ts'), PLUGIN)
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())

  await cf.write(config('portcullis_x_hits'))
  const refused = await gw.reloader.reload('admin')
  t.equal(refused.result, 'failed')
  t.equal(refused.error, 'route "r", plugin x: counter "portcullis_x_hits" of plugin x must be named <what>_total: portcullis_x_hits_total')

  t.equal((await request(`${gw.url}/r`)).statusCode, 200)
  const scrape = async (accept: string) => (await request(`${gw.adminUrl as string}/metrics`, { headers: { accept } })).body.text()
  t.match(await scrape('text/plain'), /^portcullis_x_hits_total 1$/m)
  t.match(await scrape('application/openmetrics-text'), /^portcullis_x_hits_total 1$/m)
})
