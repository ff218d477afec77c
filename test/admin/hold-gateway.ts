import type { Test } from 'tap'
import { join } from 'node:path'
import { sharedWithPlugins } from '../helpers/user-plugin.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

/** A gateway whose plugin endpoints GET /plugins/holdp/held (held until `release()`) and /plugins/holdp/count count their calls. */
export async function holdGateway (t: Test) {
  const held = sharedWithPlugins('held', { calls: 0, counted: 0, release: () => {}, released: Promise.resolve() })
  held.released = new Promise<void>(resolve => { held.release = resolve })
  const dir = t.testdir({
    'holdp.ts': `import { definePlugin, Type } from 'portcullis'
const shared = (name: string): any => (globalThis as any)[Symbol.for('portcullis.test.shared.' + name)]
export default definePlugin({
  name: 'holdp',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    ctx.shared('admin', () => {
      ctx.admin.route('GET', '/held', async () => { shared('held').calls++; await shared('held').released; return { body: { held: true } } })
      ctx.admin.route('GET', '/count', async () => { shared('held').counted++; return { body: {} } })
    })
    return {}
  }
})
`
  })
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, '  - { name: all, match: { path: "/*" }, upstream: a, plugins: { holdp: {} } }', 'loadPlugins: [' + JSON.stringify(join(dir, 'holdp.ts')) + ']'))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { held.release(); await gw.close(); await Promise.all([a.close(), cf.remove()]) })
  return { gw, port: Number(new URL(gw.adminUrl as string).port), held }
}
