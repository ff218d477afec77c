import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startUpstream } from '../helpers/upstream.ts'
import { startCluster } from '../workers/helpers.ts'

const INDEX = new URL('../../src/index.ts', import.meta.url).href

// In worker mode a line too long for PIPE_BUF even without its objects was cut to its level, time,
// pid, worker and msg: a plugin's line of hundreds of fields lost the route and plugin it came
// from, and the request it was about.
t.test('workers: a line cut to its last fallback keeps its identifying fields, each cut if long', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fallback-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const plugin = join(dir, 'many-fields.ts')
  writeFileSync(plugin, `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
const fields = Object.fromEntries(Array.from({ length: 400 }, (_, i) => ['k' + i, 'v' + i]))
export default definePlugin({
  name: 'many-fields', priority: 10, schema: Type.Object({}),
  setup: (_config, ctx) => ({ onRequest (req) { ctx.log.warn({ ...fields, requestId: req.id, upstream: 'u'.repeat(300) }, 'many fields') } })
})
`)
  const up = await startUpstream()
  t.teardown(() => up.close())
  const { cli, url } = await startCluster(t, `  u: { targets: [ { url: "${up.url}" } ] }`,
    '  - { name: chatty, match: { path: /c }, upstream: u, plugins: { many-fields: {} } }',
    { loadPlugins: [plugin], env: { PORTCULLIS_LOG_LIMIT_MS: '0' } })
  const res = await request(`${url}/c`, { headers: { 'x-request-id': 'many-fields-1' } })
  t.equal(res.statusCode, 200)
  await res.body.dump()

  const line = await cli.waitForLine(l => l.msg === 'many fields', 10_000)
  t.match(line, {
    level: 40, pid: Number, worker: Number, truncated: Number,
    route: 'chatty', plugin: 'many-fields', requestId: 'many-fields-1',
    upstream: /^u{64}…\(\+236 bytes\)$/
  }, 'its route, plugin and request, a long one cut')
  t.equal(line?.k0, undefined, 'its other fields left out')
})
