import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_FROM_SOURCES, ROOT, runNode } from '../helpers/run-cli.ts'

// In a clone, plugin new suggested `--dir config/plugins` for config/gateway.yaml, then printed
// `loadPlugins: [./config/plugins/...]`, which that config resolves from its own folder
// (config/config/plugins). With -c the line is relative to the config's folder, and loads.
const cli = (cwd: string, ...args: string[]) => runNode([...CLI_FROM_SOURCES.map(a => a === 'src/cli/main.ts' ? join(ROOT, a) : a), ...args], { cwd })
const loadPluginsLine = (stdout: string): string | undefined => /^ {2}(loadPlugins: \[.*\])$/m.exec(stdout)?.[1]

t.test('plugin new -c FILE prints the loadPlugins line FILE loads the plugin with', async t => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-scaffold-'))
  t.teardown(() => rmSync(cwd, { recursive: true, force: true }))
  const made = await cli(cwd, 'plugin', 'new', 'add-tenant', '--dir', 'config/plugins', '-c', 'config/gateway.yaml')
  t.equal(made.code, 0, made.stderr)
  const line = loadPluginsLine(made.stdout)
  t.equal(line, 'loadPlugins: [./plugins/add-tenant/index.ts]')
  t.match(made.stdout, 'Load it from config/gateway.yaml (a relative path is relative to its folder):')
  writeFileSync(join(cwd, 'config', 'gateway.yaml'), `${line as string}
server: { listen: { port: 8080 } }
upstreams: { app: { targets: [ { url: "http://127.0.0.1:3001" } ] } }
routes:
  - { name: app, match: { path: /app/* }, upstream: app, plugins: { add-tenant: {} } }
`)
  const validated = await cli(cwd, 'validate', '-c', 'config/gateway.yaml')
  t.equal(validated.code, 0, validated.stderr)
  t.match(validated.stdout, 'config/gateway.yaml: valid (1 route, 1 upstream)', 'the config loads the plugin by that line')

  mkdirSync(join(cwd, 'deploy'))
  const other = await cli(cwd, 'plugin', 'new', 'other', '--dir', 'config/plugins', '-c', 'deploy/gateway.yaml')
  t.equal(loadPluginsLine(other.stdout), 'loadPlugins: [../config/plugins/other/index.ts]', 'a config in another folder')
  const plain = await cli(cwd, 'plugin', 'new', 'plain', '--dir', 'config/plugins')
  t.equal(loadPluginsLine(plain.stdout), 'loadPlugins: [./config/plugins/plain/index.ts]', 'without -c: for a config in the current folder')
  t.match(plain.stdout, 'for a config in the current folder: -c FILE prints it for yours')
})

t.test('in a clone, the refusal of plugins/ suggests the -c that goes with its --dir', async t => {
  const refused = await cli(ROOT, 'plugin', 'new', 'zz-suggestion-probe')
  t.equal(refused.code, 2)
  t.match(refused.stderr, 'e.g. in a folder beside your config: --dir config/plugins -c config/gateway.yaml')
})
