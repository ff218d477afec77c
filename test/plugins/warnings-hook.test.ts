import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseConfig } from '../../src/config/load.ts'
import { runCliHere } from '../helpers/run-cli.ts'

// Plugins had no way to warn at load of a valid config that is likely a mistake: only the core's
// warnings reached `validate` (at file:line:column) and the start's log. A plugin's `warnings`
// hook is asked for each route's use of it; its messages are placed at that use's key.
const INDEX = JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)

const PLUGIN = `import { definePlugin, Type } from ${INDEX}
export default definePlugin({
  name: 'notes',
  priority: 100,
  schema: Type.Object({ say: Type.Optional(Type.String()), mode: Type.Optional(Type.String({ default: 'plain' })) }),
  warnings (config, ctx) {
    if (config.mode === 'throw') throw new Error('cannot tell')
    if (config.mode === 'promise') return Promise.resolve([]) as never
    if (config.mode === 'text') return 'not a list' as never
    if (config.mode === 'fixed') return [config.say ?? '']
    const uses = ctx.plugins.map(p => p.name).join(',')
    return config.say === undefined ? [] : [\`\${config.say} (\${config.mode}) on \${ctx.routeName}: \${uses}; consumers \${ctx.consumers.all.map(c => c.id).join(',')}\`]
  },
  setup: () => ({})
})
`

const YAML = `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./notes.ts ]
consumers:
  - id: alice
plugins:
  notes: { say: top }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: inherits
    match: { path: /a/* }
    upstream: u
    plugins:
      compress: {}
  - name: again
    match: { path: /b/* }
    upstream: u
  - name: own
    match: { path: /c/* }
    upstream: u
    plugins:
      notes: { say: mine }
  - name: off
    match: { path: /d/* }
    upstream: u
    plugins:
      notes: false
  - name: throws
    match: { path: /e/* }
    upstream: u
    plugins:
      notes: { mode: throw }
  - name: promises
    match: { path: /f/* }
    upstream: u
    plugins:
      notes: { mode: promise }
  - name: text
    match: { path: /g/* }
    upstream: u
    plugins:
      notes: { mode: text }
`

function writeConfig (t: Test, yaml = YAML): string {
  const dir = t.testdir({ 'notes.ts': PLUGIN })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, yaml)
  return file
}

const EXPECTED = [
  // A top-level config: asked for each route that uses it, each message at the top-level key.
  { line: 7, col: 3, path: 'plugins.notes', message: 'top (plain) on inherits: compress,notes; consumers alice' },
  { line: 7, col: 3, path: 'plugins.notes', message: 'top (plain) on again: notes; consumers alice' },
  { line: 23, col: 7, path: 'routes[2].plugins.notes', message: 'mine (plain) on own: notes; consumers alice' },
  // Never a failed load: a hook that throws, or returns what is not its messages, is a warning naming the plugin.
  { line: 33, col: 7, path: 'routes[4].plugins.notes', message: 'plugin "notes": its warnings hook threw: cannot tell (route "throws")' },
  { line: 38, col: 7, path: 'routes[5].plugins.notes', message: 'plugin "notes": its warnings hook returned a promise: it must be synchronous (route "promises")' },
  { line: 43, col: 7, path: 'routes[6].plugins.notes', message: 'plugin "notes": its warnings hook must return an array of messages (strings) (route "text")' }
]

t.test('a plugin\'s warnings are placed at the key of the config they are about', async t => {
  const file = writeConfig(t)
  const loaded = await parseConfig(YAML, file, {})
  t.same(loaded.warnings?.map(w => ({ line: w.line, col: w.col, path: w.path, message: w.message })), EXPECTED)
  t.ok(loaded.warnings?.every(w => w.file === file))
})

t.test('validate prints them at file:line:column', async t => {
  const file = writeConfig(t)
  const run = await runCliHere('validate', '-c', file)
  t.equal(run.code, 0, 'valid, with warnings')
  t.same(run.stderr.split('\n').filter(l => l !== '').sort(), EXPECTED.map(w => `${file}:${w.line}:${w.col} warning: ${w.path}: ${w.message}`).sort())
  t.match(run.stdout, 'valid (7 routes, 1 upstream)')
})

t.test('the same message at the same key is kept once', async t => {
  const yaml = YAML.replace('notes: { say: top }', 'notes: { say: "said once", mode: fixed }')
  const loaded = await parseConfig(yaml, writeConfig(t, yaml), {})
  t.same(loaded.warnings?.filter(w => w.path === 'plugins.notes').map(w => w.message), ['said once'], 'not once for each of the two routes that use it')
})

t.test('definePlugin refuses a warnings that is not a function', async t => {
  const { definePlugin, Type } = await import('../../src/index.ts')
  t.throws(() => definePlugin({ name: 'bad', priority: 1, schema: Type.Object({}), warnings: [] as never, setup: () => ({}) }),
    { message: 'plugin "bad": warnings must be a function' })
})
