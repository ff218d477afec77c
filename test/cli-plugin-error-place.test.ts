import t from 'tap'
import { realpathSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, runCli } from './helpers/run-cli.ts'

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

/** A plugin `name` whose setup runs `body` (source text); `head`: its imports. */
const setupPlugin = (name: string, body: string, head = '') => `import { definePlugin, Type } from ${INDEX}
${head}
export default definePlugin({
  name: '${name}', priority: 100, schema: Type.Object({}),
  setup (_config, ctx) {
    ${body}
    return {}
  }
})
`

t.test('a library in the plugin folder\'s node_modules throws: the place is the plugin\'s call of it', async t => {
  const dir = t.testdir({
    'lib.ts': setupPlugin('lib', 'parseMode(\'\')', "import { parseMode } from 'strict-mode'"),
    node_modules: {
      'strict-mode': {
        'package.json': JSON.stringify({ name: 'strict-mode', type: 'module', main: 'index.js' }),
        'index.js': "export function parseMode (mode) {\n  throw new Error('empty mode')\n}\n"
      }
    },
    'gateway.yaml': yaml('lib')
  })
  const run = await runCli('start', '--no-watch', '-c', join(dir, 'gateway.yaml'))
  t.equal(run.code, 1)
  t.match(run.stderr, `plugin lib: empty mode (at ${join(dir, 'lib.ts')}:6:`, `stderr: ${run.stderr}`)
})

t.test('a plugin in a folder holding the gateway: the place is the plugin\'s line, not the gateway\'s source', async t => {
  // loadPlugins: [ /work/main/zz-x.mts ] named src/metrics/plugin-metrics.ts, where the gateway checked the name.
  const file = join(ROOT, `.place-test-${process.pid}.ts`)
  writeFileSync(file, setupPlugin('beside', 'ctx.metrics.counter({ name: \'bad name\', help: \'x\' })'))
  t.teardown(() => rmSync(file, { force: true }))
  const dir = t.testdir({ 'gateway.yaml': yaml('beside').replace('./beside.ts', file) })
  const run = await runCli('start', '--no-watch', '-c', join(dir, 'gateway.yaml'))
  t.equal(run.code, 1)
  t.match(run.stderr, `(at ${file}:6:`, `stderr: ${run.stderr}`)
})

t.test('a folder with "(" in its name: the place is found, in a function and at the top level', async t => {
  const dir = t.testdir({
    'my (copy)': {
      'pts.ts': setupPlugin('pts', 'throw new Error(\'no points\')'),
      'top.ts': `throw new Error('no top')\nexport default {}\n`
    },
    'gateway.yaml': yaml('pts').replace('./pts.ts', './my (copy)/pts.ts'),
    'top.yaml': yaml('top').replace('./top.ts', './my (copy)/top.ts')
  })
  const run = await runCli('start', '--no-watch', '-c', join(dir, 'gateway.yaml'))
  t.equal(run.code, 1)
  t.match(run.stderr, `plugin pts: no points (at ${join(dir, 'my (copy)', 'pts.ts')}:6:`, `stderr: ${run.stderr}`)
  const top = await runCli('start', '--no-watch', '-c', join(dir, 'top.yaml'))
  t.equal(top.code, 1)
  t.match(top.stderr, `no top (at ${join(dir, 'my (copy)', 'top.ts')}:1:`, `stderr: ${top.stderr}`)
})

t.test('a plugin folder reached through a symlink: the place is the file the stack names, its real path', async t => {
  const dir = t.testdir({
    real: { 'pts.ts': setupPlugin('pts', 'throw new Error(\'no points\')') },
    link: t.fixture('symlink', 'real'),
    'gateway.yaml': yaml('pts').replace('./pts.ts', './link/pts.ts')
  })
  const run = await runCli('start', '--no-watch', '-c', join(dir, 'gateway.yaml'))
  t.equal(run.code, 1)
  t.match(run.stderr, `plugin pts: no points (at ${join(realpathSync(dir), 'real', 'pts.ts')}:6:`, `stderr: ${run.stderr}`)
})
