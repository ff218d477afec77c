import t, { type Test } from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { startFromFile, namedUpstream } from '../reload/helpers.ts'
import { startGateway } from '../helpers/gateway.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'
import { waitForLog } from '../helpers/logs.ts'
import { runCliHere } from '../helpers/run-cli.ts'

// JS lets a plugin throw anything: `throw null` or a string once crashed start and validate with
// an internal TypeError (reading .message of null), or lost the message (`undefined`). Each is
// reported as the documented error, naming the route and plugin, with String(value).
const INDEX = new URL('../../src/index.ts', import.meta.url).href
const dir = mkdtempSync(join(tmpdir(), 'thrown-values-'))
writeUserPlugin(dir, 'throws-null', 500, '(() => { throw null })()')
writeUserPlugin(dir, 'throws-string', 500, "(() => { throw 'no key configured' })()")
writeUserPlugin(dir, 'rejects-undefined', 500, 'Promise.reject(undefined)')
const up = await namedUpstream('a')
t.teardown(() => up.close())

const file = join(dir, 'gateway.yaml')
function writeConfig (plugins: string): void {
  writeFileSync(file, `server:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./throws-null.ts, ./throws-string.ts, ./rejects-undefined.ts ]
upstreams:
  a: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: a, plugins: { ${plugins} } }
`)
}

t.test('a setup that throws a value that is not an Error: the one line naming route and plugin, at start and on reload', async t => {
  for (const [plugin, shown] of [['throws-null', 'null'], ['throws-string', 'no key configured'], ['rejects-undefined', 'undefined']]) {
    writeConfig(`${plugin}: {}`)
    await t.rejects(startFromFile(file), { code: 'PCL_ERR_PLUGIN_SETUP', plugin, route: 'r', message: `route "r", plugin ${plugin}: ${shown}` })
  }
  writeConfig('throws-null: {}')
  const here = await runCliHere('start', '-c', file)
  t.same({ code: here.code, stderr: here.stderr }, { code: 1, stderr: 'portcullis: cannot start: route "r", plugin throws-null: null\n' })

  writeConfig('')
  const gw = await startFromFile(file)
  t.teardown(() => gw.close())
  for (const [plugin, shown] of [['throws-null', 'null'], ['throws-string', 'no key configured']]) {
    writeConfig(`${plugin}: {}`)
    const res = await request(`${gw.adminUrl as string}/config/reload`, { method: 'POST', signal: AbortSignal.timeout(10_000) })
    t.match(await res.body.json(), { result: 'failed', error: 'reload_failed', message: `route "r", plugin ${plugin}: ${shown}` })
  }
  t.equal((await request(`${gw.url}/x`)).statusCode, 200, 'the active config serves')
})

/** `portcullis validate` of `config`, which must fail: its problems, each without file and position. */
async function validateProblems (t: Test, config: string): Promise<string[]> {
  const run = await runCliHere('validate', '-c', config)
  t.equal(run.code, 1)
  return run.stderr.split('\n').filter(l => l.startsWith(config)).map(l => l.slice(config.length + 1).replace(/^\d+:\d+ /, ''))
}

t.test('validate: a check or a module top level that throws, or a check that returns what is not its problems, is a problem at its key', async t => {
  const checkDir = t.testdir({
    'chk.ts': `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'chk',
  priority: 600,
  schema: Type.Object({ mode: Type.String() }, { additionalProperties: false }),
  check (config): any {
    if (config.mode === 'null') throw null
    if (config.mode === 'string') throw 'bad mode'
    if (config.mode === 'async') return Promise.resolve([{ path: ['mode'], message: 'async problem' }])
    if (config.mode === 'object') return {}
    if (config.mode === 'string-path') return [{ path: 'mode', message: 'string path' }]
    if (config.mode === 'no-path') return [{ message: 'no path' }]
    if (config.mode === 'no-message') return [{ path: [] }]
    if (config.mode === 'fine') return [{ path: ['mode'], message: 'reported here' }]
    return undefined
  },
  setup () { return {} }
})
`,
    'top-null.mjs': 'throw null\n',
    'top-string.mjs': "throw 'half-configured'\n"
  })
  const modes = ['null', 'string', 'async', 'object', 'string-path', 'no-path', 'no-message', 'fine', 'none']
  const config = join(checkDir, 'gateway.yaml')
  writeFileSync(config, `server: { listen: { port: 8080 } }
loadPlugins: [ ./chk.ts, ./top-null.mjs, ./top-string.mjs ]
upstreams:
  a: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
${modes.map((mode, i) => `  - { name: r${i}, match: { path: /r${i} }, upstream: a, plugins: { chk: { mode: "${mode}" } } }`).join('\n')}
`)
  const lines = await validateProblems(t, config)
  t.same(lines, [
    'loadPlugins[1]: cannot load plugin "./top-null.mjs": null',
    'loadPlugins[2]: cannot load plugin "./top-string.mjs": half-configured',
    'routes[0].plugins.chk: the plugin\'s check failed: null',
    'routes[1].plugins.chk: the plugin\'s check failed: bad mode',
    'routes[2].plugins.chk: the plugin\'s check returned a promise: check must be synchronous (an async check is not awaited); return the problems themselves',
    'routes[3].plugins.chk: the plugin\'s check must return an array of problems ({ path, message }), not an object',
    'routes[4].plugins.chk: the plugin\'s check returned problem 0 with a path that is a string: a path is an array of keys and indexes ([\'deny\', 1]; [] for the plugin\'s key)',
    'routes[5].plugins.chk: the plugin\'s check returned problem 0 with no path: a path is an array of keys and indexes ([\'deny\', 1]; [] for the plugin\'s key)',
    'routes[6].plugins.chk: the plugin\'s check returned problem 0 with no message: a message is a string',
    'routes[7].plugins.chk.mode: reported here'
  ])
})

t.test('validate: a credentials.identities that throws, or returns what is not an array, is a problem at the credential', async t => {
  const idDir = t.testdir({
    'ids.ts': `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'ids',
  priority: 1500,
  schema: Type.Object({}),
  credentials: {
    schema: Type.Object({ token: Type.String() }),
    identities (c): any {
      if (c.token === 'null') throw null
      if (c.token === 'gives-object') return {}
      return [c.token]
    }
  },
  setup () { return {} }
})
`
  })
  const config = join(idDir, 'gateway.yaml')
  writeFileSync(config, `server: { listen: { port: 8080 } }
loadPlugins: [ ./ids.ts ]
upstreams:
  a: { targets: [ { url: "http://127.0.0.1:1" } ] }
consumers:
  - { id: a, credentials: { ids: { token: "null" } } }
  - { id: b, credentials: { ids: { token: "gives-object" } } }
  - { id: c, credentials: { ids: { token: "fine" } } }
routes:
  - { name: r, match: { path: /r }, upstream: a, plugins: { ids: {} } }
`)
  const lines = await validateProblems(t, config)
  t.same(lines, [
    'consumers[0].credentials.ids: plugin ids\'s credentials.identities failed: null',
    'consumers[1].credentials.ids: plugin ids\'s credentials.identities returned object, not an array of strings'
  ])
})

t.test('an admin endpoint handler that throws a value that is not an Error: 500 internal_error, logged naming the endpoint', async t => {
  const adminDir = t.testdir({
    'odd-admin.ts': `import { definePlugin, Type } from ${JSON.stringify(INDEX)}
export default definePlugin({
  name: 'odd-admin',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    ctx.shared('admin', () => {
      ctx.admin.route('GET', '/null', () => { throw null })
      ctx.admin.route('POST', '/later', async () => { throw 'not now' })
    })
    return {}
  }
})
`
  })
  const gw = await startGateway(`loadPlugins: [./odd-admin.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: u, plugins: { odd-admin: {} } }
`, { admin: true, file: join(adminDir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  for (const [method, path, shown] of [['GET', '/null', 'null'], ['POST', '/later', 'not now']] as const) {
    const res = await request(`${gw.adminUrl as string}/plugins/odd-admin${path}`, { method })
    t.equal(res.statusCode, 500, path)
    t.same(await res.body.json(), { error: 'internal_error', message: 'the admin endpoint failed; see the gateway log' })
    const message = `the plugin admin endpoint ${method} /plugins/odd-admin${path} failed: ${shown}`
    t.ok(await waitForLog(gw.logs, { msg: 'admin endpoint failed' }), 'logged')
    t.ok(gw.logs.some(l => l.msg === 'admin endpoint failed' && (l.err as { message?: string } | undefined)?.message === message), message)
  }
})
