import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { spawnNode, stopCli } from '../helpers/cli.ts'
import { startUpstream } from '../helpers/upstream.ts'

// The compiled gateway strips a .ts plugin's types with esbuild, whose code has other lines (type
// declarations go): a logged stack named those. Not under the test runner's hooks, which turn
// source maps on themselves: env -u takes out the NODE_OPTIONS it adds to any process started.
const dir = mkdtempSync(join(tmpdir(), 'portcullis-stack-'))
const THROW_LINE = 12
writeFileSync(join(dir, 'thrower.ts'), `import { definePlugin, Type } from 'portcullis'

interface Settings {
  reason: string
}
type Unused = { a: number }

export default definePlugin({
  name: 'thrower', priority: 800, schema: Type.Object({ reason: Type.String() }),
  setup (config: Settings) {
    return { onRequest (): void {
      throw new Error(config.reason)
    } }
  }
})
`)

t.test('a .ts plugin\'s stack in the log names its own lines', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [./thrower.ts]
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: app, match: { path: /* }, upstream: app, plugins: { thrower: { reason: on purpose } } }
`)
  const gw = spawnNode(['dist/src/cli/main.js', 'start', '--no-watch', '-c', file], {}, { wrapper: ['env', '-u', 'NODE_OPTIONS'] })
  t.teardown(() => stopCli(gw))
  const listening = await gw.waitForLine(l => l.msg === 'gateway listening', 90_000)
  t.ok(listening, `listening (stderr: ${gw.stderr()})`)
  const res = await request(String(listening?.url))
  await res.body.dump()
  t.equal(res.statusCode, 500)
  const failed = await gw.waitForLine(l => l.msg === 'plugin failed') as { err?: { message: string, stack: string } } | undefined
  t.equal(failed?.err?.message, 'on purpose')
  t.match(failed?.err?.stack, `thrower.ts:${THROW_LINE}:`, 'the line of the throw')
})
