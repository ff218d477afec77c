import t from 'tap'
import { join } from 'node:path'
import { runCli } from './helpers/run-cli.ts'

// `cannot start: route "r1", plugin deref: Cannot read properties of undefined (reading 'value')`
// said not where: the plugin's file and line, of a setup's throw or a throw at the module's top level.
const INDEX = JSON.stringify(new URL('../src/index.ts', import.meta.url).href)

const yaml = (plugin: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./${plugin}.ts ]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - { name: r1, match: { path: /* }, upstream: u, plugins: { ${plugin}: {} } }
`

t.test('a setup that throws: the error names the line of the plugin\'s file', async t => {
  const dir = t.testdir({
    'deref.ts': `import { definePlugin, Type } from ${INDEX}

interface Options { nested?: { value: string } }

export default definePlugin({
  name: 'deref', priority: 100, schema: Type.Object({}),
  setup (config: Options) {
    const value: string = config.nested!.value
    return { onRequest (req) { req.headers['x-v'] = value } }
  }
})
`,
    'gateway.yaml': yaml('deref')
  })
  const run = await runCli('start', '--no-watch', '-c', join(dir, 'gateway.yaml'))
  t.equal(run.code, 1)
  t.match(run.stderr, `cannot start: route "r1", plugin deref: Cannot read properties of undefined (reading 'value') (at ${join(dir, 'deref.ts')}:8:`)
})

t.test('a throw at the module\'s top level: the error names its line', async t => {
  const dir = t.testdir({
    'top.ts': `import { definePlugin, Type } from ${INDEX}

type Unused = string
const settings: Record<string, string> = JSON.parse('{}')
if (settings.mode === undefined) throw new Error('no mode set')

export default definePlugin({ name: 'top', priority: 100, schema: Type.Object({}), setup: () => ({}) })
`,
    'gateway.yaml': yaml('top')
  })
  const run = await runCli('start', '--no-watch', '-c', join(dir, 'gateway.yaml'))
  t.equal(run.code, 1)
  t.match(run.stderr, `cannot load plugin "./top.ts": no mode set (at ${join(dir, 'top.ts')}:5:`)
})
