import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { discoverPlugins } from '../../src/plugins/registry.ts'
import { ConfigError } from '../../src/config/config-error.ts'

// A folder of plugins/ that cannot be imported (a plugin half written there) was an uncaught
// error with a stack from every command: it is a problem naming that folder, which every command prints as such.
t.test('a built-in folder that cannot be imported fails discovery, named', async t => {
  const root = mkdtempSync(join(tmpdir(), 'portcullis-builtins-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const folder = (name: string, entry: string, text: string) => {
    mkdirSync(join(root, name))
    writeFileSync(join(root, name, entry), text)
  }
  folder('aaa-notes', 'README.md', 'no entry: not a plugin folder\n')
  t.same([...(await discoverPlugins(pathToFileURL(`${root}/`))).keys()], [], 'a folder without an index is no plugin')

  folder('half-written', 'index.ts', 'export default definePlugin({\n  name: \'half-written\',\n')
  const err = await discoverPlugins(pathToFileURL(`${root}/`)).catch((e: unknown) => e)
  t.ok(err instanceof ConfigError, 'a ConfigError: the commands print its message, without a stack')
  t.match((err as Error).message, `${join(root, 'half-written', 'index.ts')}:1:1 built-in plugin folder ${join(root, 'half-written')}/ cannot be loaded: `)
  t.match((err as Error).message, `(${root}/ holds the built-in plugins only: keep a plugin of your own elsewhere and name it in loadPlugins)`)

  rmSync(join(root, 'half-written'), { recursive: true })
  folder('not-a-plugin', 'index.js', 'export default { name: "not-a-plugin" }\n')
  const other = await discoverPlugins(pathToFileURL(`${root}/`)).catch((e: unknown) => e)
  t.match((other as Error).message, `built-in plugin folder ${join(root, 'not-a-plugin')}/ cannot be loaded: its default export is not a definePlugin(...) result`)
})
