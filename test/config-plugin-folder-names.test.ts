import t, { type Test } from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { issues } from './helpers/config-issues.ts'

// A plugin's key is the name its definePlugin gives, not its folder's: the error connected neither.
const API = new URL('../src/index.ts', import.meta.url).href
const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  users: { targets: [ { url: "http://127.0.0.1:3001" } ] }
`

function pluginFolder (t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-plugin-names-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'plugins', 'bad1'), { recursive: true })
  writeFileSync(join(dir, 'plugins', 'bad1', 'index.mjs'), `import { definePlugin, Type } from '${API}'
export default definePlugin({ name: '${name}', priority: 810, schema: Type.Object({}), setup () { return {} } })
`)
  return dir
}

t.test('a route key named as a loadPlugins entry\'s folder says what that entry defines', async t => {
  const dir = pluginFolder(t, 'bad-one')
  t.same(await issues(t, HEAD + `loadPlugins: [./plugins/bad1/index.mjs]
routes:
  - { name: a, match: { path: /a }, upstream: users, plugins: { bad1: {} } }
`, {}, join(dir, 'gw.yaml')), [
    `${join(dir, 'gw.yaml')}:7:65 routes[0].plugins.bad1: unknown plugin "bad1": loadPlugins[0] (./plugins/bad1/index.mjs) defines "bad-one": use that name here, or give the plugin the name "bad1" in its definePlugin`
  ])
})

t.test('a loadPlugins entry naming a plugin\'s folder names the file in it', async t => {
  const dir = pluginFolder(t, 'bad-one')
  t.same(await issues(t, HEAD + `loadPlugins: [./plugins/bad1]
routes: []
`, {}, join(dir, 'gw.yaml')), [
    `${join(dir, 'gw.yaml')}:5:15 loadPlugins[0]: cannot load plugin "./plugins/bad1": it is a directory, not a file: name the file in it, ${join(dir, 'plugins', 'bad1', 'index.mjs')} (end the path with /index.mjs)`
  ])
})
