import t from 'tap'
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig, type LoadedConfig } from '../src/config/load.ts'
import { MAX_FOLDERS, pluginFiles, walkPluginFolder } from '../src/config/plugin-files.ts'
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

t.test("a .json beside a plugin is no plugin file: its change neither makes the plugin stale nor counts as a change to the config's files", async t => {
  const dir = t.testdir({})
  const folder = join(dir, 'plugins', 'tenant')
  mkdirSync(join(folder, 'coverage'), { recursive: true })
  writeSchema(folder, 'header')
  writeFileSync(join(folder, 'index.ts'), `import { definePlugin } from ${JSON.stringify(INDEX)}
import { schema } from './schema.ts'
export default definePlugin({ name: 'tenant', priority: 500, schema, setup: () => ({}) })
`)
  writeFileSync(join(folder, 'package-lock.json'), '{}\n')
  writeFileSync(join(folder, 'coverage', 'out.json'), '{}\n')
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `loadPlugins: [ ./plugins/tenant/index.ts ]
server: { listen: { host: 127.0.0.1, port: 0 } }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes: [ { name: r, match: { path: /r }, upstream: up, plugins: { tenant: { header: x } } } ]
`)
  t.same(pluginFiles(join(folder, 'index.ts')), [join(folder, 'index.ts'), join(folder, 'schema.ts')])
  const first = await loadConfig(file, {})
  const referenced = new ReferencedFiles(first, Date.now() + 1_000)
  const later = new Date(Date.now() + 5_000)
  for (const json of [join(folder, 'package-lock.json'), join(folder, 'coverage', 'out.json')]) {
    writeFileSync(json, '{ "changed": true }\n')
    utimesSync(json, later, later)
  }
  t.equal(referenced.changed(), false, 'a touch of the config file would not reload')
  t.same((await loadConfig(file, {})).stalePlugins, [], 'no "plugin files changed" warning')
})

t.test("a plugin's folder is walked within a bound of folders, whatever their depth and number", async t => {
  const dir = t.testdir({})
  // 300 folders in a line and 300 side by side, none with code: the walk stops at MAX_FOLDERS.
  mkdirSync(join(dir, ...Array.from({ length: 300 }, (_, i) => `d${i}`)), { recursive: true })
  for (let i = 0; i < 300; i++) mkdirSync(join(dir, 'wide', `w${i}`), { recursive: true })
  writeFileSync(join(dir, 'index.ts'), 'export default {}\n')
  const walk = walkPluginFolder(join(dir, 'index.ts'))
  t.equal(walk.foldersRead, MAX_FOLDERS)
  t.same(walk.files, [join(dir, 'index.ts')])
})

t.test("an edit to a plugin's other file is seen by its mtime and size, with the same mtime too", async t => {
  const dir = t.testdir({ 'index.ts': 'export default {}\n', 'helper.ts': 'export const a = 1\n', 'gateway.yaml': '' })
  const when = new Date(Date.now() - 60_000)
  utimesSync(join(dir, 'helper.ts'), when, when)
  const loaded = { file: join(dir, 'gateway.yaml'), config: { loadPlugins: ['./index.ts'], upstreams: {}, routes: [] }, plugins: new Map() } as unknown as LoadedConfig
  const referenced = new ReferencedFiles(loaded, Date.now() + 1_000)
  t.equal(referenced.changed(), false)
  writeFileSync(join(dir, 'helper.ts'), 'export const a = 12\n')
  utimesSync(join(dir, 'helper.ts'), when, when)
  t.equal(referenced.changed(), true, 'a different size, under the mtime it had')
})
