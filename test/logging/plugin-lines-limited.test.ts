import t, { type Test } from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'
import { metricValue } from '../helpers/metric-value.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { until } from '../helpers/wait.ts'

// Lines of a plugin's failures that a client can provoke on every request: bounded per route and
// plugin, so that one route's flood hides no other's, and each logged once per window, then counted.

/** A gateway with the user plugins written in `plugins` (name: hooks), closed at teardown unless the test did. */
async function gateway (t: Test, plugins: Record<string, string>, yaml: string, options: { admin?: boolean } = {}): Promise<TestGateway> {
  const dir = t.testdir({})
  for (const [name, hooks] of Object.entries(plugins)) writeUserPlugin(dir, name, 500, hooks)
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`loadPlugins: [ ${Object.keys(plugins).map(n => `./${n}.ts`).join(', ')} ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
${yaml}`, { file: join(dir, 'gw.yaml'), admin: options.admin })
  let closed = false
  t.teardown(async () => { if (!closed) await gw.close() })
  return { ...gw, close: async () => { closed = true; await gw.close() } }
}

async function statusOf (url: string): Promise<number> {
  const res = await request(url, { headersTimeout: 20_000, bodyTimeout: 20_000 })
  await res.body.dump()
  return res.statusCode
}

const summariesOf = (gw: TestGateway, msg: string) => gw.logs.filter(l => typeof l.msg === 'string' && l.msg.includes(` more like "${msg}" in the last `))

t.test('70 failures of one route\'s plugin, each quoting the request, then one of another route\'s: that one is logged; the flood\'s summary names its route and plugin', async t => {
  const gw = await gateway(t, {
    picky: '{ onRequest (req: any) { throw new Error(\'bad input \' + req.query) } }',
    ledger: '{ onRequest () { throw new Error(\'ledger unreachable\') } }'
  }, `routes:
  - { name: search, match: { path: /search }, upstream: up, plugins: { picky: {} } }
  - { name: payments, match: { path: /payments }, upstream: up, plugins: { ledger: {} } }
`)
  for (let i = 0; i < 70; i++) t.equal(await statusOf(`${gw.url}/search?q=${i}`), 500, `search ${i}`)
  t.equal(await statusOf(`${gw.url}/payments`), 500)
  const failed = gw.logs.filter(l => l.msg === 'plugin failed')
  t.match(failed.filter(l => l.route === 'payments'), [{ level: 50, plugin: 'ledger', err: { message: 'ledger unreachable' } }], 'the other route\'s failure: logged')
  t.equal(failed.filter(l => l.route === 'search').length, 65, 'the flood: 64 kinds, then the first of the rest')
  await gw.close()
  t.match(summariesOf(gw, 'plugin failed'), [{ level: 50, route: 'search', plugin: 'picky', suppressed: 5 }], 'the rest counted, naming route and plugin')
})

const N = 20

t.test(`observers that throw on each of ${N} requests: one line per route, plugin and hook, then a summary`, async t => {
  const gw = await gateway(t, {
    watcher: '{ onUpstreamTry () { throw new Error(\'try\') }, onFinished () { throw new Error(\'finished\') } }'
  }, `routes:
  - { name: watched, match: { path: /* }, upstream: up, plugins: { watcher: {} } }
`)
  const statuses = await Promise.all(Array.from({ length: N }, async (_, i) => await statusOf(`${gw.url}/${i}`)))
  t.same(statuses, Array(N).fill(200), 'the requests go on')
  const lines = (hook: string) => gw.logs.filter(l => l.msg === `plugin ${hook} hook failed`)
  // onFinished runs once each response has closed.
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request').length === N, 10_000), 'every request finished')
  for (const hook of ['onUpstreamTry', 'onFinished']) {
    t.match(lines(hook), [{ level: 50, route: 'watched', plugin: 'watcher', err: { message: hook === 'onFinished' ? 'finished' : 'try' } }], `${hook}: one line`)
  }
  await gw.close()
  for (const hook of ['onUpstreamTry', 'onFinished']) {
    t.match(summariesOf(gw, `plugin ${hook} hook failed`), [{ level: 50, route: 'watched', plugin: 'watcher', suppressed: N - 1 }], `${hook}: the others counted`)
  }
})

t.test(`a hook that never settles on ${N} requests: one "plugin timed out" line, then a summary; each timeout counted`, async t => {
  const gw = await gateway(t, {
    hang: '{ onRequest: () => new Promise(() => {}) }'
  }, `server:
  listen: { host: 127.0.0.1, port: 0 }
  pluginTimeout: 300ms
routes:
  - { name: stalled, match: { path: /* }, upstream: up, plugins: { hang: {} } }
`, { admin: true })
  const statuses = await Promise.all(Array.from({ length: N }, async (_, i) => await statusOf(`${gw.url}/${i}`)))
  t.same(statuses, Array(N).fill(504))
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_timeouts_total{kind="request"}'), N, 'each counted')
  t.match(gw.logs.filter(l => l.msg === 'plugin timed out'), [{ level: 40, route: 'stalled', plugin: 'hang', err: { message: 'its onRequest did not finish within server.pluginTimeout (300 ms)' } }], 'one line')
  await gw.close()
  t.match(summariesOf(gw, 'plugin timed out'), [{ level: 40, route: 'stalled', plugin: 'hang', suppressed: N - 1 }], 'the others counted')
})
