import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { request } from 'undici'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { failureCounter } from '../../plugins/shared/auth/failure.ts'
import { configFile, gatewayYaml, startFromFile, waitFor } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'

// A plugin could take any name, for the life of the process: pp-other made portcullis_pp_hits_total,
// and plugin pp, added by a later reload (pp-other gone), could not have it until a restart.

t.test('a plugin names its metrics portcullis_<plugin, - as _>_...', async t => {
  const metrics = pluginMetrics(new Registry())
  t.throws(() => metrics.forPlugin('pp-other').counter({ name: 'portcullis_pp_hits_total', help: 'x' }),
    { message: 'metric "portcullis_pp_hits_total" is not named after plugin pp-other: its metrics are named portcullis_pp_other_<what>_<unit>' })
  t.ok(metrics.forPlugin('pp-other').counter({ name: 'portcullis_pp_other_hits_total', help: 'x' }))
  t.ok(metrics.forPlugin('pp').counter({ name: 'portcullis_pp_hits_total', help: 'x' }), 'the name is still free for pp')
  t.throws(() => metrics.forPlugin('pp').gauge({ name: 'portcullis_pp', help: 'x' }), /portcullis_pp_<what>_<unit>/, 'the prefix alone is no name')

  const declaration = { name: 'portcullis_team_a_failures_total', help: 'Failures.', labelNames: ['route'] }
  const first = metrics.forPlugin('team-a').counter(declaration)
  t.equal(metrics.forPlugin('team-b').counter(declaration), first, 'another plugin shares it by the same options object')
  t.throws(() => metrics.forPlugin('team-b').counter({ ...declaration }), /is plugin team-a's/, 'not by a copy')

  t.equal(failureCounter(metrics.forPlugin('acl')), failureCounter(metrics.forPlugin('key-auth')), 'the built-in auth plugins share portcullis_auth_failures_total')
  t.ok(metrics.forPlugin('rate-limit').counter({ name: 'portcullis_ratelimit_requests_total', help: 'x', labelNames: ['route'] }), 'built-in names from before the rule stay theirs')
  t.throws(() => metrics.forPlugin('team-a').counter({ name: 'portcullis_jwt_jwks_fetches_total', help: 'x' }), /portcullis_team_a_<what>_<unit>/)
})

t.test('a name no running config uses is free again; one still in use keeps its metric and counts', async t => {
  const registry = new Registry()
  const one = pluginMetrics(registry)
  const hits = one.forPlugin('pp').counter({ name: 'portcullis_pp_hits_total', help: 'x', labelNames: ['route'] })
  hits.inc({ route: 'a' })
  const two = pluginMetrics(registry)
  t.equal(two.forPlugin('pp').counter({ name: 'portcullis_pp_hits_total', help: 'x', labelNames: ['route'] }), hits, 'the next config: the same metric')
  t.throws(() => two.forPlugin('pp').counter({ name: 'portcullis_pp_hits_total', help: 'x', labelNames: ['route', 'code'] }),
    { message: 'metric "portcullis_pp_hits_total" already exists with another type or other labels, made by plugin pp in a config still running: ' +
      'it can change once no running config uses it (a reload without it first, or a restart)' })
  one.release()
  t.ok(registry.getSingleMetric('portcullis_pp_hits_total'), 'the config after still uses it')
  hits.inc({ route: 'a' })
  two.release()
  t.equal(registry.getSingleMetric('portcullis_pp_hits_total'), undefined, 'no config uses it: out of the registry')

  const three = pluginMetrics(registry)
  t.equal(three.forPlugin('pp').counter({ name: 'portcullis_pp_hits_total', help: 'x', labelNames: ['route'] }), hits, 'asked again alike: the same metric')
  t.equal((await hits.get()).values[0]?.value, 2, 'its counts kept')
  three.release()
  const gauge = pluginMetrics(registry).forPlugin('pp').gauge({ name: 'portcullis_pp_hits_total', help: 'x', labelNames: ['route', 'code'] })
  t.equal(registry.getSingleMetric('portcullis_pp_hits_total'), gauge, 'another type and labels')
})

const PLUGIN = `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: NAME, priority: 500, schema: Type.Object({ metric: Type.String(), labels: Type.Array(Type.String()) }), setup (config, ctx) {
  const hits = ctx.metrics.counter({ name: config.metric, help: 'Hits.', labelNames: config.labels })
  return { onRequest (req) { hits.inc(Object.fromEntries(config.labels.map(l => [l, req.route.name]))) } }
} })
`

t.test('in a gateway: a name outside the prefix fails setup; a plugin removed by a reload gives its names up', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const config = (plugin: string, metric: string, labels: string) => gatewayYaml({ u: [up.url] }, `  - { name: r, match: { path: /r }, upstream: u, plugins: { ${plugin}: { metric: ${metric}, labels: ${labels} } } }`,
    'loadPlugins: [ ./pp-other.ts, ./pp.ts ]')
  const cf = await configFile(config('pp-other', 'portcullis_pp_other_hits_total', '[route]'))
  t.teardown(() => cf.remove())
  for (const name of ['pp', 'pp-other']) writeFileSync(join(cf.dir, `${name}.ts`), PLUGIN.replace('NAME', JSON.stringify(name)))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const metricsText = async () => (await request(`${gw.adminUrl as string}/metrics`)).body.text()
  const reload = async (plugin: string, metric: string, labels: string) => {
    await cf.write(config(plugin, metric, labels))
    return gw.reloader.reload('admin')
  }

  const refused = await reload('pp-other', 'portcullis_pp_hits_total', '[route]')
  t.equal(refused.result, 'failed')
  t.match(refused.error, 'metric "portcullis_pp_hits_total" is not named after plugin pp-other: its metrics are named portcullis_pp_other_<what>_<unit>')

  t.equal((await reload('pp', 'portcullis_pp_hits_total', '[route]')).result, 'success', 'pp-other removed, pp added: the name is pp\'s')
  t.equal((await request(`${gw.url}/r`)).statusCode, 200)
  t.match(await metricsText(), 'portcullis_pp_hits_total{route="r"} 1')

  t.equal((await reload('pp-other', 'portcullis_pp_other_hits_total', '[route]')).result, 'success', 'pp removed')
  t.ok(await waitFor(async () => (await metricsText()).includes('portcullis_pp_hits_total') ? undefined : true, 10_000), 'its metric left /metrics once its config was disposed')
  const back = await reload('pp', 'portcullis_pp_hits_total', '[route, method]')
  t.equal(back.result, 'success', `pp back, with other labels (${String(back.error)})`)
})
