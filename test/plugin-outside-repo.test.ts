import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { spawnNode, stopCli } from './helpers/cli.ts'
import { startUpstream } from './helpers/upstream.ts'

// A user's plugins live next to their config, far from this repository and with no node_modules:
// `import ... from 'portcullis'` must resolve, and a .ts plugin must load, with the compiled CLI
// (what a global install and the Docker image run), not under the test runner's TypeScript loader.
const dir = mkdtempSync(join(tmpdir(), 'portcullis-user-'))
writeFileSync(join(dir, 'stamp.js'), `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'stamp',
  priority: 800,
  schema: Type.Object({ value: Type.String() }, { additionalProperties: false }),
  setup (config) { return { onRequest (req) { req.headers['x-stamp'] = config.value } } }
})
`)
writeFileSync(join(dir, 'tenant.ts'), `import { definePlugin, Type, type GatewayResponse } from 'portcullis'
import { tenantOf } from './tenant-name.ts'

interface Settings { header: string }
const schema = Type.Object({ header: Type.String() }, { additionalProperties: false })

export default definePlugin({
  name: 'tenant',
  priority: 810,
  schema,
  setup (config: Settings) {
    return { onResponse (res: GatewayResponse): void { res.headers[config.header] = tenantOf('acme') } }
  }
})
`)
writeFileSync(join(dir, 'tenant-name.ts'), 'export const tenantOf = (name: string): string => `tenant:${name}`\n')

t.test('a .js and a .ts plugin outside the repository, importing portcullis, run in the compiled gateway', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [./stamp.js, ./tenant.ts]
upstreams:
  app: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: app
    match: { path: /* }
    upstream: app
    plugins:
      stamp: { value: outside }
      tenant: { header: x-tenant }
`)
  // NODE_OPTIONS emptied: the test runner's TypeScript loader must not help.
  const gw = spawnNode(['dist/src/cli/main.js', 'start', '--no-watch', '-c', file], { NODE_OPTIONS: '' })
  t.teardown(() => stopCli(gw))
  const up1 = await gw.waitForLine(l => l.msg === 'gateway listening', 90_000)
  t.ok(up1, `listening (stderr: ${gw.stderr()})`)
  const res = await request(`${String(up1?.url)}/hello`)
  const echoed = await res.body.json() as { headers: Record<string, string> }
  t.equal(echoed.headers['x-stamp'], 'outside', 'the .js plugin ran')
  t.equal(res.headers['x-tenant'], 'tenant:acme', 'the .ts plugin ran, its own .ts import included')
})
