import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client'
import { request } from 'undici'
import { openMetricsText } from '../../src/metrics/exposition.ts'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { configFile, gatewayYaml, startFromFile } from '../reload/helpers.ts'
import { startUpstream } from '../helpers/upstream.ts'

// OpenMetrics names a counter's family without _total: a gauge portcullis_x_requests beside the
// counter portcullis_x_requests_total was accepted, and every OpenMetrics scrape (Prometheus' default
// Accept) then answered 500, prom-client refusing the family twice: the target down, no series stored.

const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5'

t.test('a metric sharing a family or sample name with another plugin\'s is refused, naming it', async t => {
  const metrics = pluginMetrics(new Registry())
  const x = metrics.forPlugin('x')
  x.counter({ name: 'portcullis_x_requests_total', help: 'x' })
  t.throws(() => x.gauge({ name: 'portcullis_x_requests', help: 'x' }), {
    message: 'metric "portcullis_x_requests" is taken by plugin x\'s portcullis_x_requests_total: OpenMetrics scrapes would name both portcullis_x_requests; name it otherwise'
  })
  x.gauge({ name: 'portcullis_x_foo', help: 'x' })
  t.throws(() => metrics.forPlugin('x-foo').counter({ name: 'portcullis_x_foo_total', help: 'x' }), /taken by plugin x's portcullis_x_foo: OpenMetrics scrapes would name both portcullis_x_foo;/)
  x.histogram({ name: 'portcullis_x_wait_seconds', help: 'x' })
  t.throws(() => x.gauge({ name: 'portcullis_x_wait_seconds_count', help: 'x' }), /taken by plugin x's portcullis_x_wait_seconds: OpenMetrics scrapes would name both portcullis_x_wait_seconds_count;/)
  t.throws(() => x.counter({ name: 'portcullis_x_wait_seconds_total', help: 'x' }), /would name both portcullis_x_wait_seconds;/)
  t.ok(x.gauge({ name: 'portcullis_x_requests_count', help: 'x' }), 'no name in common: a gauge\'s only sample is its name')
  t.ok(x.gauge({ name: 'portcullis_x_foo', help: 'x' }), 'the same metric again')
})

t.test('a released metric frees the names it took', async t => {
  const registry = new Registry()
  const first = pluginMetrics(registry)
  first.forPlugin('x').counter({ name: 'portcullis_x_requests_total', help: 'x' })
  first.release()
  t.ok(pluginMetrics(registry).forPlugin('x').gauge({ name: 'portcullis_x_requests', help: 'x' }))
})

const plugin = (name: string) => `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: ${JSON.stringify(name)}, priority: 500,
  schema: Type.Object({ counters: Type.Array(Type.String()), gauges: Type.Array(Type.String()) }),
  setup (config, ctx) {
    const counters = config.counters.map(name => ctx.metrics.counter({ name, help: 'Counted.' }))
    for (const name of config.gauges) ctx.metrics.gauge({ name, help: 'Gauged.' }).set(1)
    return { onRequest () { for (const c of counters) c.inc() } }
  } })
`

t.test('in a gateway: the setup fails, naming the metric taken; OpenMetrics scrapes go on', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const config = (routes: string) => gatewayYaml({ u: [up.url] }, routes, 'loadPlugins: [ ./x.ts, ./x-foo.ts, ./auth.ts ]')
  const cf = await configFile(config('  - { name: r, match: { path: /r }, upstream: u, plugins: { x: { counters: [ portcullis_x_requests_total ], gauges: [] } } }'))
  t.teardown(() => cf.remove())
  for (const name of ['x', 'x-foo', 'auth']) writeFileSync(join(cf.dir, `${name}.ts`), plugin(name))
  const gw = await startFromFile(cf.file)
  t.teardown(() => gw.close())
  const scrape = async () => {
    const res = await request(`${gw.adminUrl as string}/metrics`, { headers: { accept: PROMETHEUS_ACCEPT } })
    return { status: res.statusCode, type: res.headers['content-type'], text: await res.body.text() }
  }

  await cf.write(config('  - { name: r, match: { path: /r }, upstream: u, plugins: { x: { counters: [ portcullis_x_requests_total ], gauges: [ portcullis_x_requests ] } } }'))
  let reload = await gw.reloader.reload('admin')
  t.equal(reload.result, 'failed')
  t.equal(reload.error, 'route "r", plugin x: metric "portcullis_x_requests" is taken by plugin x\'s portcullis_x_requests_total: ' +
    'OpenMetrics scrapes would name both portcullis_x_requests; name it otherwise')

  await cf.write(config(`  - { name: r, match: { path: /r }, upstream: u, plugins: { x: { counters: [ portcullis_x_requests_total ], gauges: [ portcullis_x_foo ] } } }
  - { name: r2, match: { path: /r2 }, upstream: u, plugins: { x-foo: { counters: [ portcullis_x_foo_total ], gauges: [] } } }`))
  reload = await gw.reloader.reload('admin')
  t.equal(reload.result, 'failed')
  t.equal(reload.error, 'route "r2", plugin x-foo: metric "portcullis_x_foo_total" is taken by plugin x\'s portcullis_x_foo: ' +
    'OpenMetrics scrapes would name both portcullis_x_foo; name it otherwise')

  // The built-in auth plugins' portcullis_auth_failures_total: user plugin auth's prefix is portcullis_auth_.
  await cf.write(config(`  - { name: r, match: { path: /r }, upstream: u, plugins: { x: { counters: [ portcullis_x_requests_total ], gauges: [] } } }
  - { name: k, match: { path: /k }, upstream: u, plugins: { key-auth: {} } }
  - { name: a, match: { path: /a }, upstream: u, plugins: { auth: { counters: [], gauges: [ portcullis_auth_failures ] } } }`))
  reload = await gw.reloader.reload('admin')
  t.equal(reload.result, 'failed')
  t.equal(reload.error, 'route "a", plugin auth: metric "portcullis_auth_failures" is taken by plugin key-auth\'s portcullis_auth_failures_total: ' +
    'OpenMetrics scrapes would name both portcullis_auth_failures; name it otherwise')

  t.equal((await request(`${gw.url}/r`)).statusCode, 200)
  const served = await scrape()
  t.equal(served.status, 200)
  t.match(served.type, /^application\/openmetrics-text/)
  t.match(served.text, /^portcullis_x_requests_total 1$/m)
  t.notMatch(served.text, /^portcullis_(?:x_requests|x_foo|auth_failures) /m, 'nothing of the configs refused')
})

t.test('the auth gauge first: the built-in plugin\'s counter is the one refused, at start', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const cf = await configFile(gatewayYaml({ u: [up.url] }, `  - { name: a, match: { path: /a }, upstream: u, plugins: { auth: { counters: [], gauges: [ portcullis_auth_failures ] } } }
  - { name: k, match: { path: /k }, upstream: u, plugins: { key-auth: {} } }`, 'loadPlugins: [ ./auth.ts ]'))
  t.teardown(() => cf.remove())
  writeFileSync(join(cf.dir, 'auth.ts'), plugin('auth'))
  const failed = await startFromFile(cf.file).then(async gw => { await gw.close(); return undefined }, (err: Error) => err)
  t.match(failed?.message, 'route "k", plugin key-auth: metric "portcullis_auth_failures_total" is taken by plugin auth\'s portcullis_auth_failures: ' +
    'OpenMetrics scrapes would name both portcullis_auth_failures; name it otherwise')
})

type MetricJson = MetricObjectWithValues<MetricValue<string>>
const json = (name: string, type: string, value: number) => ({ name, help: name, type, aggregator: 'sum', values: [{ value, labels: {} }] }) as unknown as MetricJson

t.test('openMetricsText shows a family named twice once, the first, and warns of it once', async t => {
  const warnings: Error[] = []
  const onWarning = (w: Error) => { if ((w as Error & { code?: string }).code === 'PORTCULLIS_METRIC_FAMILY') warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const metrics = [json('portcullis_dup_requests_total', 'counter', 3), json('portcullis_dup_requests', 'gauge', 7), json('portcullis_dup_other', 'gauge', 1)]

  for (let i = 0; i < 2; i++) {
    const text = await openMetricsText(metrics)
    t.match(text, /^portcullis_dup_requests_total 3$/m)
    t.match(text, /^portcullis_dup_other 1$/m)
    t.notMatch(text, /^portcullis_dup_requests 7$/m)
    t.match(text, /# EOF\n$/)
  }
  // emitWarning's listeners run on the next tick.
  await new Promise(resolve => setImmediate(resolve))
  t.same(warnings.map(w => w.message), ['metric portcullis_dup_requests left out of OpenMetrics scrapes: another metric has its family name, portcullis_dup_requests'])
})
