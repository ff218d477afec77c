import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { startGateway } from './helpers/gateway.ts'
import { keyName, schemaPaths, type Schema } from './helpers/schema-paths.ts'

// Each plugin page's YAML examples are complete configs that a real gateway starts with (plugin
// setup included: regexes, CIDR tables and templates compiled), on a free port instead of 8080.
const PAGES = ['compress', 'cors', 'ip-filter', 'request-size', 'request-termination', 'redirect', 'opentelemetry']

for (const page of PAGES) {
  const text = readFileSync(new URL(`../docs/plugins/${page}.md`, import.meta.url), 'utf8')
  const blocks = [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map(m => m[1] as string)
  t.test(`docs/plugins/${page}.md`, async t => {
    t.ok(blocks.length > 0, 'has a YAML example')
    for (const yaml of blocks) {
      const config = parse(yaml) as { server: { listen: unknown }, routes: Array<{ plugins?: Record<string, unknown> }> }
      t.ok(config.routes.some(r => r.plugins?.[page] !== undefined), `the example uses ${page}`)
      config.server.listen = { host: '127.0.0.1', port: 0 }
      const gw = await startGateway(stringify(config))
      await gw.close()
    }
  })
}

// Each key of a built-in plugin's schema is named on its page (`key`, `a.key` or key:), or for the two
// header plugins, which have no page, in docs/plugins.md: basic-auth's page once left out anonymous.
t.test('every key of each built-in plugin\'s schema is named in its docs', async t => {
  const { builtinPlugins } = await import('../src/plugins/registry.ts')
  for (const [name, def] of await builtinPlugins()) {
    const keys = new Set([...schemaPaths(def.schema as Schema)].map(keyName))
    const page = new URL(`../docs/plugins/${name}.md`, import.meta.url)
    const text = readFileSync(existsSync(page) ? page : new URL('../docs/plugins.md', import.meta.url), 'utf8')
    t.same([...keys].filter(k => !new RegExp(`[\`.]${k}\`|\\b${k}:`).test(text)), [], `${name}: keys its docs do not name`)
  }
})

// Every metric the gateway or a plugin defines is named in docs/metrics.md.
t.test('docs/metrics.md names every metric in the sources', async t => {
  const { execFileSync } = await import('node:child_process')
  const root = new URL('..', import.meta.url)
  const sources = execFileSync('git', ['grep', '-hoE', "name: 'portcullis_[a-z0-9_]+'", '--', 'src', 'plugins', ':!*.test.ts'], { cwd: root, encoding: 'utf8' })
  const names = new Set([...sources.matchAll(/portcullis_[a-z0-9_]+/g)].map(m => m[0]))
  const text = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8')
  t.ok(names.size >= 20, `${names.size} metric names found`)
  t.same([...names].filter(n => !text.includes(`\`${n}\``)), [], 'metrics docs/metrics.md does not name')
})
