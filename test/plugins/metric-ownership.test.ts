import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { request } from 'undici'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { startGateway } from '../helpers/gateway.ts'
import { startUpstream } from '../helpers/upstream.ts'

// Any plugin could write into a built-in's metric (and replace its HELP text), or, asking with other
// labels, fail the built-in's setup, blamed on it. A name is now the first plugin's to ask for it.

t.test('a metric name is the first plugin\'s; another shares it only through the same declaration', async t => {
  const metrics = pluginMetrics(new Registry())
  const declaration = { name: 'portcullis_team_a_failures_total', help: 'Failures.', labelNames: ['route'] }
  const first = metrics.forPlugin('team-a').counter(declaration)
  t.equal(metrics.forPlugin('team-b').counter(declaration), first, 'the same options object: the same metric')
  t.equal(metrics.forPlugin('team-a').counter({ ...declaration }), first, 'its owner asks again (another route, the next config)')
  t.throws(() => metrics.forPlugin('intruder').counter({ ...declaration }),
    /metric "portcullis_team_a_failures_total" is plugin team-a's \(it asked for it first\): plugin intruder may not write into it/)
  t.throws(() => metrics.forPlugin('intruder').gauge({ name: 'portcullis_team_a_failures_total', help: 'x' }), /is plugin team-a's/, 'whatever the type')
})

t.test('a user plugin asking for a built-in\'s metric fails its own setup, whatever the route order', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'forger.ts')
  writeFileSync(file, `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({ name: 'forger', priority: 500, schema: Type.Object({ labels: Type.Array(Type.String()) }), setup (config, ctx) {
  ctx.metrics.counter({ name: 'portcullis_auth_failures_total', help: 'forged', labelNames: config.labels })
  return {}
} })
`)
  const config = (routes: string[]) => `loadPlugins: [ "${file}" ]
consumers:
  - { id: alice, credentials: { key-auth: { keys: [ "alice-key-0123456789abcdef" ] } } }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
${routes.join('\n')}
`
  const builtin = '  - { name: k, match: { path: /k }, upstream: u, plugins: { key-auth: {} } }'
  const forger = (labels: string) => `  - { name: f, match: { path: /f }, upstream: u, plugins: { forger: { labels: ${labels} } } }`
  const failure = (routes: string[]) => startGateway(config(routes)).then(async gw => { await gw.close(); return undefined }, (err: Error) => err.message)
  t.equal(await failure([builtin, forger('[route, plugin, reason]')]),
    'route "f", plugin forger: metric "portcullis_auth_failures_total" is plugin key-auth\'s (it asked for it first): plugin forger may not write into it; ' +
    'name it after the plugin (portcullis_<plugin>_...), or share one declaration (the same options object) between the two', 'the same labels')
  t.match(await failure([builtin, forger('[route]')]), /^route "f", plugin forger: metric "portcullis_auth_failures_total" is plugin key-auth's/, 'other labels')
  t.match(await failure([forger('[route]'), builtin]),
    /^route "f", plugin forger: metric "portcullis_auth_failures_total" is not named after plugin forger: its metrics are named portcullis_forger_<what>_<unit>/,
    'the forger\'s route first: refused on its own, not named after it')
})

t.test('the built-in auth plugins and acl still share portcullis_auth_failures_total', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`consumers:
  - { id: alice, credentials: { key-auth: { keys: [ "alice-key-0123456789abcdef" ] } } }
upstreams:
  u: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: k, match: { path: /k }, upstream: u, plugins: { key-auth: {} } }
  - { name: b, match: { path: /b }, upstream: u, plugins: { basic-auth: {} } }
  - { name: a, match: { path: /a }, upstream: u, plugins: { key-auth: {}, acl: { deny: { consumers: [alice] } } } }
`, { admin: true })
  t.teardown(() => gw.close())
  for (const path of ['/k', '/b']) t.equal((await request(`${gw.url}${path}`)).statusCode, 401, path)
  t.equal((await request(`${gw.url}/a`, { headers: { 'x-api-key': 'alice-key-0123456789abcdef' } })).statusCode, 403)
  const text = await (await request(`${gw.adminUrl as string}/metrics`)).body.text()
  for (const [route, plugin, reason] of [['k', 'key-auth', 'missing'], ['b', 'basic-auth', 'missing'], ['a', 'acl', 'denied']]) {
    t.match(text, `portcullis_auth_failures_total{route="${route}",plugin="${plugin}",reason="${reason}"} 1`, `${plugin} counts`)
  }
})
