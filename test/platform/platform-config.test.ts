import t from 'tap'
import { fileURLToPath } from 'node:url'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'

const PROBE = fileURLToPath(new URL('../helpers/probe-plugin.ts', import.meta.url))

async function issues (text: string): Promise<string[]> {
  try {
    await parseConfig(text, 'gw.yaml', {})
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue)
    throw err
  }
  return []
}

const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: ["${PROBE}"]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`

t.test('top-level plugins: unknown names, bad configs and `false` for a plugin that is not global', async t => {
  t.same(await issues(HEAD + `plugins:
  request-header: { set: { x-a: b } }
  response-headers: { sett: {} }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { probe: false } }
`), [
    'gw.yaml:7:3 plugins.request-header: unknown plugin "request-header" (did you mean "request-headers"?); there are: acl, basic-auth, cache, compress, cors, ip-filter, jwt-auth, key-auth, opentelemetry, probe, rate-limit, redirect, request-headers, request-size, request-termination, response-headers (your own are loaded with loadPlugins)',
    'gw.yaml:8:23 plugins.response-headers.sett: unknown key "sett" (did you mean "set"?)',
    'gw.yaml:10:68 routes[0].plugins.probe: "probe: false" turns off a top-level plugin, but plugins: has no "probe"'
  ])
})

t.test('stores: one way to reach Redis, and plugins may only name stores that exist', async t => {
  t.same(await issues(HEAD + `stores:
  shared: { type: redis, url: "redis://127.0.0.1:6379" }
  both: { type: redis, url: "redis://a:1", cluster: ["b:2"] }
  none: { type: redis }
  ha: { type: redis, sentinels: ["10.0.0.1:26379"] }
  memory: { type: redis, url: "redis://127.0.0.1:6379" }
plugins:
  probe: { store: sharde }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { probe: { store: nowhere } } }
`), [
    'gw.yaml:8:3 stores.both: use one of url, sentinels or cluster, not url and cluster',
    'gw.yaml:9:3 stores.none: needs one of url, sentinels (with name) or cluster',
    'gw.yaml:10:3 stores.ha: sentinels needs name: the primary the sentinels monitor',
    'gw.yaml:11:19 stores.memory.type: the store named "memory" is the built-in memory store: give this one another name',
    'gw.yaml:13:19 plugins.probe.store: unknown store "sharde" (did you mean "shared"?) (stores: memory, shared, both, none, ha)',
    'gw.yaml:15:77 routes[0].plugins.probe.store: unknown store "nowhere" (stores: memory, shared, both, none, ha)'
  ])
})

t.test('consumers: unique ids, credentials only for plugins that take them, valid, and never shared', async t => {
  t.same(await issues(HEAD + `consumers:
  - { id: app, credentials: { probe: { key: k-app-1 } } }
  - { id: app }
  - { id: web, credentials: { probe: { key: k-app-1 } } }
  - { id: cli, credentials: { probe: { key: ab, extra: 1 }, request-headers: {} } }
  - { id: bot, credentials: { prob: { key: k-bot-1 } } }
routes: []
`), [
    'gw.yaml:8:11 consumers[1].id: consumer id "app" is already used by consumers[0]',
    'gw.yaml:9:38 consumers[2].credentials.probe: the same probe credential is given to consumers[0] ("app")',
    'gw.yaml:10:45 consumers[3].credentials.probe.key: must NOT have fewer than 4 characters',
    'gw.yaml:10:49 consumers[3].credentials.probe.extra: unknown key "extra"',
    'gw.yaml:10:61 consumers[3].credentials.request-headers: no plugin "request-headers" takes credentials (these do: basic-auth, key-auth, probe)',
    'gw.yaml:11:31 consumers[4].credentials.prob: no plugin "prob" takes credentials (did you mean "probe"?) (these do: basic-auth, key-auth, probe)'
  ])
})

t.test('a valid platform config loads with its defaults', async t => {
  const loaded = await parseConfig(HEAD + `stores:
  shared: { type: redis, url: "\${REDIS_URL:-redis://127.0.0.1:6379}", keyPrefix: "gw:", commandTimeout: 50ms }
consumers:
  - { id: app, groups: [mobile], metadata: { tier: gold }, credentials: { probe: { key: k-app-1 } } }
plugins:
  probe: { store: shared }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { probe: { store: memory } } }
`, 'gw.yaml', {})
  t.equal(loaded.config.stores?.shared?.type, 'redis')
  t.equal(loaded.config.consumers?.[0]?.id, 'app')
})

t.test("a plugin's check: its problems at their keys, a check that throws at the plugin's", async t => {
  const dir = t.testdir({
    'checked.ts': `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({
  name: 'checked',
  priority: 500,
  schema: Type.Object({ list: Type.Array(Type.String()), broken: Type.Optional(Type.Boolean()) }),
  check (config, route) {
    if (config.broken === true) throw new Error('oops')
    return config.list.flatMap((v, i) => v === 'bad' ? [{ path: ['list', i], message: 'is bad (route params: ' + (route?.params.join(',') ?? 'none') + ')' }] : [])
  },
  setup: () => ({})
})
`
  })
  const head = HEAD.replace(`loadPlugins: ["${PROBE}"]`, `loadPlugins: ["${dir}/checked.ts"]`)
  t.same(await issues(head + `plugins:
  checked: { list: [bad] }
routes:
  - { name: a, match: { path: /a/:id }, upstream: u, plugins: { checked: { list: [ok, bad] } } }
  - { name: b, match: { path: /b }, upstream: u, plugins: { checked: { list: [], broken: true } } }
`), [
    'gw.yaml:7:21 plugins.checked.list[0]: is bad (route params: none)',
    'gw.yaml:9:87 routes[0].plugins.checked.list[1]: is bad (route params: id)',
    "gw.yaml:10:70 routes[1].plugins.checked: the plugin's check failed: oops"
  ])
})

t.test('StoreName, ConsumerId and FilePath inside records, tuples and additionalProperties, in plugin configs, credentials and consumer metadata', async t => {
  const dir = t.testdir({
    'refs.ts': `import { ConsumerId, definePlugin, FilePath, StoreName, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({
  name: 'refs',
  priority: 500,
  schema: Type.Object({
    byRecord: Type.Optional(Type.Record(Type.String(), StoreName())),
    files: Type.Optional(Type.Record(Type.String(), FilePath())),
    pair: Type.Optional(Type.Tuple([Type.String(), ConsumerId()])),
    more: Type.Optional(Type.Object({ known: Type.Optional(Type.String()) }, { additionalProperties: ConsumerId() }))
  }, { additionalProperties: false }),
  credentials: { schema: Type.Object({ owner: Type.Optional(ConsumerId()), file: Type.Optional(FilePath()), stores: Type.Optional(Type.Record(Type.String(), StoreName())) }) },
  consumerMetadata: Type.Object({ pair: Type.Optional(Type.Tuple([StoreName(), FilePath()])) }),
  setup: () => ({})
})
`
  })
  const head = HEAD.replace(`loadPlugins: ["${PROBE}"]`, `loadPlugins: ["${dir}/refs.ts"]`)
  t.same(await issues(head + `consumers:
  - { id: app, credentials: { refs: { owner: nobody, stores: { a: nosuch } } }, metadata: { refs: { pair: [nostore, f.pem] } } }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { refs: { byRecord: { x: nosuch, y: memory }, pair: [x, nobody], more: { known: z, other: nobody } } } }
`), [
    'gw.yaml:7:46 consumers[0].credentials.refs.owner: unknown consumer "nobody"',
    'gw.yaml:7:67 consumers[0].credentials.refs.stores.a: unknown store "nosuch" (stores: memory)',
    'gw.yaml:7:108 consumers[0].metadata.refs.pair[0]: unknown store "nostore" (stores: memory)',
    'gw.yaml:9:84 routes[0].plugins.refs.byRecord.x: unknown store "nosuch" (stores: memory)',
    'gw.yaml:9:115 routes[0].plugins.refs.pair[1]: unknown consumer "nobody"',
    'gw.yaml:9:149 routes[0].plugins.refs.more.other: unknown consumer "nobody"'
  ])

  const file = `${dir}/conf/gw.yaml`
  const loaded = await parseConfig(head + `consumers:
  - { id: app, credentials: { refs: { owner: app, file: key.pem } }, metadata: { refs: { pair: [memory, meta.pem] } } }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { refs: { files: { ca: ca.pem, abs: /etc/x.pem }, pair: [x, app] } } }
`, file, {})
  t.same(loaded.config.routes[0]?.plugins?.refs, { files: { ca: `${dir}/conf/ca.pem`, abs: '/etc/x.pem' }, pair: ['x', 'app'] }, 'a FilePath in a Record is resolved')
  const consumer = loaded.config.consumers?.[0]
  t.equal((consumer?.credentials?.refs as { file: string }).file, `${dir}/conf/key.pem`, 'a FilePath in a credential is resolved')
  t.same((consumer?.metadata?.refs as { pair: string[] }).pair, ['memory', `${dir}/conf/meta.pem`], 'a FilePath in a tuple of consumer metadata is resolved')
})

t.test("a top-level plugin's check also meets the params of each route that uses it", async t => {
  t.same(await issues(HEAD + `plugins:
  redirect: { to: "/new/:id" }
routes:
  - { name: c, match: { path: /c }, upstream: u }
  - { name: d, match: { path: /d/:id }, upstream: u }
  - { name: e, match: { path: /e }, upstream: u, plugins: { redirect: { to: /new } } }
  - { name: f, match: { path: /f }, upstream: u, plugins: { redirect: false } }
  - { name: g, match: { path: /g/* }, upstream: u }
`), [
    'gw.yaml:7:19 plugins.redirect.to: on routes "c" (/c), "g" (/g/*): uses ":id", which the route\'s match.path does not define (a literal ":" or "*" is written "\\:" or "\\*")'
  ])
})
