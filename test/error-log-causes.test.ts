import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { spawnCli, stopCli } from './helpers/cli.ts'
import { configFile, gatewayYaml } from './reload/helpers.ts'

const INDEX = new URL('../src/index.ts', import.meta.url).href

// The real process logger (createLogger, as `portcullis start` makes it): pino joins each cause's
// message to the error's, so a wrapper made as `${what}: ${cause.message}` read `boom: boom`.
t.test('a wrapped error is logged with its cause\'s message once, and the cause\'s stack', async t => {
  const cf = await configFile('')
  writeFileSync(join(cf.dir, 'pp.ts'), `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'pp',
  priority: 500,
  schema: Type.Object({ refuse: Type.Optional(Type.Boolean()) }),
  setup (config, ctx) {
    if (config.refuse === true) throw new Error('setup refused')
    ctx.shared('admin', () => ctx.admin.route('GET', '/boom', () => { throw new Error('admin boom') }))
    return {}
  }
})
`)
  const yaml = (routes: string) => gatewayYaml({ u: ['http://127.0.0.1:1'] }, routes, 'loadPlugins: [./pp.ts]\nlogging: { level: info }')
  await cf.write(yaml('  - { name: a, match: { path: /a }, upstream: u, plugins: { pp: {} } }'))
  const cli = spawnCli(['start', '-c', cf.file, '--no-watch'])
  t.teardown(async () => { await stopCli(cli); await cf.remove() })
  const ready = await cli.waitForLine(l => l.msg === 'gateway listening')
  t.ok(ready, `started (stderr: ${cli.stderr()})`)
  const admin = String(ready?.admin)

  const boom = await request(`${admin}/plugins/pp/boom`)
  t.equal(boom.statusCode, 500)
  await boom.body.dump()
  const failed = (await cli.waitForLine(l => l.msg === 'admin endpoint failed'))?.err as Record<string, unknown> | undefined
  t.equal(failed?.message, 'the plugin admin endpoint GET /plugins/pp/boom failed: admin boom')
  t.match(failed?.stack, /\ncaused by: Error: admin boom\n\s+at /, 'the cause\'s stack')

  await cf.write(yaml('  - { name: b, match: { path: /b }, upstream: u, plugins: { pp: { refuse: true } } }'))
  const reload = await request(`${admin}/config/reload`, { method: 'POST' })
  t.ok(reload.statusCode >= 400, `reload refused (${reload.statusCode})`)
  await reload.body.dump()
  const refused = (await cli.waitForLine(l => String(l.msg).startsWith('config reload failed')))?.err as Record<string, unknown> | undefined
  t.equal(refused?.message, 'route "b", plugin pp: setup refused')
  t.match(refused?.stack, /\ncaused by: Error: setup refused\n\s+at /, 'the cause\'s stack')
})
