import t from 'tap'
import { readFileSync } from 'node:fs'
import { parse, stringify } from 'yaml'
import { startGateway } from './helpers/gateway.ts'

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
