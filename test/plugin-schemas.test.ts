import t from 'tap'
import { dirname, join } from 'node:path'
import { request } from 'undici'
import { issues } from './helpers/config-issues.ts'
import { configFile, gatewayYaml, startFromFile } from './reload/helpers.ts'
import { startUpstream } from './helpers/upstream.ts'

// User plugins with schemas TypeBox writes as a matter of course: formats, intersections, and ones Ajv cannot compile.
const plugin = (name: string, schema: string) => `import { definePlugin, Type } from 'portcullis'
export default definePlugin({ name: '${name}', priority: 500, schema: ${schema}, setup () { return {} } })
`
const dir = t.testdir({
  'formats.ts': plugin('formats', `Type.Object({
  url: Type.Optional(Type.String({ format: 'uri' })), email: Type.Optional(Type.String({ format: 'email' })),
  at: Type.Optional(Type.String({ format: 'date-time' })), ip: Type.Optional(Type.String({ format: 'ipv4' }))
}, { additionalProperties: false })`),
  'both.ts': plugin('both', `Type.Intersect([Type.Object({ a: Type.Optional(Type.String()) }), Type.Object({ b: Type.Optional(Type.String()) })], { unevaluatedProperties: false })`),
  'regexp.ts': plugin('regexp', 'Type.Object({ x: Type.Optional(Type.RegExp(/^a+$/)) })'),
  'odd-format.ts': plugin('odd-format', `Type.Object({ x: Type.Optional(Type.String({ format: 'no-such-format' })) })`),
  'no-schema.ts': plugin('no-schema', 'undefined')
})

const config = (loads: string[], plugins: string) => `loadPlugins: [${loads.map(f => `"./${f}"`).join(', ')}]
server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:3001" } ] }
routes:
  - name: a
    match: { path: /a }
    upstream: u
    plugins:
${plugins}
`
const file = join(dir, 'gw.yaml')

t.test('common formats are checked (uri, email, date-time, ipv4), at the value', async t => {
  t.same(await issues(t, config(['formats.ts'], '      formats: { url: "not a uri", email: nobody, at: yesterday, ip: 10.0.0.256 }'), {}, file), [
    `${file}:11:23 routes[0].plugins.formats.url: must match format "uri"`,
    `${file}:11:43 routes[0].plugins.formats.email: must match format "email"`,
    `${file}:11:55 routes[0].plugins.formats.at: must match format "date-time"`,
    `${file}:11:70 routes[0].plugins.formats.ip: must match format "ipv4"`
  ])
})

t.test('Type.Intersect with unevaluatedProperties: false takes both parts\' keys, and names an unknown one', async t => {
  t.same(await issues(t, config(['both.ts'], '      both: { a: x, b: y, c: z }'), {}, file), [
    `${file}:11:27 routes[0].plugins.both.c: unknown key "c" (did you mean "a"?)`
  ])
})

t.test('a schema Ajv cannot compile is a problem at the plugin\'s key, not a stack trace', async t => {
  const found = await issues(t, config(['regexp.ts', 'odd-format.ts'], '      regexp: {}\n      odd-format: {}'), {}, file)
  t.equal(found.length, 2)
  t.match(found[0], `${file}:11:7 routes[0].plugins.regexp: its schema cannot be compiled (a mistake in the plugin, not in this file): schema is invalid: data/properties/x/type`)
  t.equal(found[1], `${file}:12:7 routes[0].plugins.odd-format: its schema cannot be compiled (a mistake in the plugin, not in this file): unknown format "no-such-format" ignored in schema at path "#/properties/x"`)
})

t.test('a plugin without a schema is refused at its loadPlugins entry', async t => {
  const found = await issues(t, config(['no-schema.ts'], '      {}'), {}, file)
  // Where in the plugin it was refused: its definePlugin call.
  t.same(found, [`${file}:1:15 loadPlugins[0]: cannot load plugin "./no-schema.ts": plugin "no-schema": schema must be a TypeBox schema, e.g. Type.Object({ ... }) (at ${dirname(file)}/no-schema.ts:2:16)`])
})

t.test('a reload to a config using a plugin whose schema does not compile is rejected; the old config serves on', async t => {
  const up = await startUpstream()
  const regexp = join(dir, 'regexp.ts')
  const cf = await configFile(gatewayYaml({ u: [up.url] }, '  - { name: a, match: { path: /a }, upstream: u }', `loadPlugins: ["${regexp}"]`))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await up.close(); await cf.remove() })
  await cf.write(gatewayYaml({ u: [up.url] }, '  - { name: a, match: { path: /a }, upstream: u, plugins: { regexp: {} } }', `loadPlugins: ["${regexp}"]`))
  const status = await gw.reloader.reload('admin')
  t.equal(status.result, 'invalid')
  t.match(status.issues?.map(i => `${i.path}: ${i.message}`), ['routes[0].plugins.regexp: its schema cannot be compiled'])
  t.equal((await request(`${gw.url}/a`)).statusCode, 200, 'the old config serves on')
})
