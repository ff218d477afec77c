import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry, type Histogram } from 'prom-client'
import { request } from 'undici'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { configFile, gatewayYaml, startFromFile, waitFor } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'

// A reload asking other buckets for a histogram in use got the old one, silently: its bounds kept.

const size = (buckets?: number[]) => ({ name: 'portcullis_wkh_size_bytes', help: 'Sizes.', labelNames: ['route'], ...(buckets === undefined ? {} : { buckets }) })
const bounds = (h: Histogram) => (h as unknown as { upperBounds: number[] }).upperBounds

t.test('a histogram in use keeps its buckets: asking others is refused; once unused, others make a new one', async t => {
  const registry = new Registry()
  const one = pluginMetrics(registry)
  const first = one.forPlugin('wkh').histogram(size([0.1, 1]))
  const two = pluginMetrics(registry)
  t.equal(two.forPlugin('wkh').histogram(size([0.1, 1])), first, 'the same buckets: the same metric')
  t.throws(() => two.forPlugin('wkh').histogram(size([0.5, 2])),
    { message: 'metric "portcullis_wkh_size_bytes" already exists with other buckets (0.1, 1), made by plugin wkh in a config still running: ' +
      'it can change once no running config uses it (a reload without it first, or a restart)' })
  one.release()
  two.release()

  const three = pluginMetrics(registry)
  const other = three.forPlugin('wkh').histogram(size([0.5, 2]))
  t.not(other, first, 'unused, asked with other buckets: a new metric')
  t.same(bounds(other), [0.5, 2])
  three.release()

  const defaults = pluginMetrics(registry).forPlugin('wkh').histogram(size())
  t.not(defaults, other, 'prom-client\'s default buckets are others too')
  t.equal(pluginMetrics(registry).forPlugin('wkh').histogram(size([...bounds(defaults)])), defaults, 'the defaults asked by value: the same metric')
})

const PLUGIN = `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: 'wkh', priority: 500, schema: Type.Object({ buckets: Type.Array(Type.Number()) }), setup (config, ctx) {
  const sizes = ctx.metrics.histogram({ name: 'portcullis_wkh_size_bytes', help: 'Sizes.', labelNames: ['route'], buckets: config.buckets })
  return { onRequest (req) { sizes.observe({ route: req.route.name }, 0.3) } }
} })
`

t.test('in a gateway: a reload asking other buckets for a histogram in use fails; after one without it, they apply', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const config = (plugins: string) => gatewayYaml({ u: [up.url] }, `  - { name: r, match: { path: /r }, upstream: u, plugins: { ${plugins} } }`, 'loadPlugins: [ ./wkh.ts ]')
  const cf = await configFile(config('wkh: { buckets: [0.1, 1] }'))
  t.teardown(() => cf.remove())
  writeFileSync(join(cf.dir, 'wkh.ts'), PLUGIN)
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metricsText = async () => (await request(`${gw.adminUrl as string}/metrics`)).body.text()
  const reload = async (plugins: string) => {
    await cf.write(config(plugins))
    return gw.reloader.reload('admin')
  }

  t.equal((await request(`${gw.url}/r`)).statusCode, 200)
  t.match(await metricsText(), 'portcullis_wkh_size_bytes_bucket{le="1",route="r"} 1')
  const refused = await reload('wkh: { buckets: [0.5, 2] }')
  t.equal(refused.result, 'failed')
  t.match(refused.error, 'metric "portcullis_wkh_size_bytes" already exists with other buckets (0.1, 1)')

  t.equal((await reload('')).result, 'success', 'a config without it')
  t.ok(await waitFor(async () => (await metricsText()).includes('portcullis_wkh_size_bytes') ? undefined : true, 10_000), 'it left /metrics once its config was disposed')
  t.equal((await reload('wkh: { buckets: [0.5, 2] }')).result, 'success')
  t.equal((await request(`${gw.url}/r`)).statusCode, 200)
  const text = await metricsText()
  t.match(text, 'portcullis_wkh_size_bytes_bucket{le="0.5",route="r"} 1')
  t.notMatch(text, 'portcullis_wkh_size_bytes_bucket{le="0.1"', 'the old buckets are gone')
})
