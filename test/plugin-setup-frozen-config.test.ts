import t from 'tap'
import { join } from 'node:path'
import { startGateway } from './helpers/gateway.ts'

// A plugin setting a default in its frozen config failed with V8's words alone ("Cannot add
// property tag, object is not extensible"), which do not say the config is read-only by design.
const api = new URL('../src/index.ts', import.meta.url).href
const plugin = (write: string) => `import { definePlugin, Type } from '${api}'
export default definePlugin({ name: 'writer', priority: 10, schema: Type.Object({ tag: Type.Optional(Type.String()), list: Type.Optional(Type.Array(Type.String())) }),
  setup (config) { ${write}; return {} } })
`

t.test('a setup writing to its frozen config fails saying configs are read-only and how to copy one', async t => {
  const writes = ['config.tag = config.tag || "default"', 'config.list.push("x")', 'delete config.tag']
  for (const write of writes) {
    const dir = t.testdir({ 'writer.mjs': plugin(write) })
    const yaml = `loadPlugins: [ ./writer.mjs ]\nupstreams:\n  u: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - name: r\n    match: { path: /a/* }\n    upstream: u\n    plugins: { writer: { tag: a, list: [a] } }\n`
    const failed = await startGateway(yaml, { file: join(dir, 'gw.yaml') }).then(async gw => { await gw.close(); return undefined }, (err: Error) => err)
    t.match(failed?.message, /^route "r", plugin writer: .*\(a plugin's config and ctx are read-only: copy what setup changes, e\.g\. \{ \.\.\.config \}\)$/, write)
  }
})

t.test('a setup\'s own TypeError is said as it is', async t => {
  const dir = t.testdir({ 'writer.mjs': plugin('throw new TypeError("tag must be lower case")') })
  const yaml = `loadPlugins: [ ./writer.mjs ]\nupstreams:\n  u: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - name: r\n    match: { path: /a/* }\n    upstream: u\n    plugins: { writer: {} }\n`
  const failed = await startGateway(yaml, { file: join(dir, 'gw.yaml') }).then(async gw => { await gw.close(); return undefined }, (err: Error) => err)
  t.equal(failed?.message, 'route "r", plugin writer: tag must be lower case')
})
