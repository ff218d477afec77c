import t from 'tap'
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../src/config/load.ts'
import { ReferencedFiles } from '../src/reload/referenced-files.ts'

const INDEX = new URL('../src/index.ts', import.meta.url).href

// A plugin as `portcullis plugin new` lays it out: index.ts imports ./schema.ts.
const writeSchema = (dir: string, key: string) => writeFileSync(join(dir, 'schema.ts'),
  `import { Type } from ${JSON.stringify(INDEX)}\nexport const schema = Type.Object({ ${key}: Type.Optional(Type.String()) }, { additionalProperties: false })\n`)

t.test("an edit to a file a loadPlugins module imports makes it stale, and is a change to the config's files", async t => {
  const dir = t.testdir({})
  const folder = join(dir, 'plugins', 'tenant')
  mkdirSync(folder, { recursive: true })
  writeSchema(folder, 'header')
  writeFileSync(join(folder, 'index.ts'), `import { definePlugin } from ${JSON.stringify(INDEX)}
import { schema } from './schema.ts'
export default definePlugin({ name: 'tenant', priority: 500, schema, setup: () => ({}) })
`)
  writeFileSync(join(folder, 'tenant.test.ts'), '// a test: never imported by the plugin\n')
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `loadPlugins: [ ./plugins/tenant/index.ts ]
server: { listen: { host: 127.0.0.1, port: 0 } }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes: [ { name: r, match: { path: /r }, upstream: up, plugins: { tenant: { header: x } } } ]
`)
  const first = await loadConfig(file, {})
  t.same(first.stalePlugins, [])
  const referenced = new ReferencedFiles(first, Date.now() + 1_000)
  t.equal(referenced.changed(), false)

  const later = new Date(Date.now() + 5_000)
  utimesSync(join(folder, 'tenant.test.ts'), later, later)
  t.same((await loadConfig(file, {})).stalePlugins, [], 'an edited test file is not the plugin')

  writeSchema(folder, 'name')
  utimesSync(join(folder, 'schema.ts'), later, later)
  t.ok(referenced.changed(), 'a touch of the config file would reload it')
  const again = await loadConfig(file, {})
  t.same(again.stalePlugins, ['./plugins/tenant/index.ts'], 'the reload warns that the plugin needs a restart')
  t.equal(again.plugins.get('tenant')?.schema.properties.header?.type, 'string', 'Node caches ES modules: the old schema still runs')
})
