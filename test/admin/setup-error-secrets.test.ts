import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { CLI_FROM_SOURCES, runNode } from '../helpers/run-cli.ts'

// A plugin's setup error quoting its config's secret was shown as it was: in the reload answer,
// GET /config's lastReload (read token), the log, and `portcullis start`'s error.
const TOKEN = 'admin-token-0123456789abcdef'
const READ = 'read-token-0123456789abcdef'
const SECRET = 'SIGNING-s3cr3t-value'
const dir = t.testdir({
  'signer.ts': `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'signer',
  priority: 500,
  schema: Type.Object({ signingKey: Type.String() }),
  setup (config) {
    if (config.signingKey.startsWith('SIGNING-')) throw new Error(\`signingKey \${config.signingKey} is not valid\`)
    return {}
  }
})
`
})
const file = join(dir, 'gateway.yaml')
const yaml = (signingKey: string, workers = 1) => `server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: ${workers}
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: "${TOKEN}"
  readToken: "${READ}"
loadPlugins: [./signer.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { signer: { signingKey: "${signingKey}" } } }
`
const QUOTED = 'route "r", plugin signer: signingKey [redacted] is not valid'

t.test('a reload whose plugin setup quotes a secret: hidden in the answer, lastReload and the log', async t => {
  writeFileSync(file, yaml('good-key-123'))
  const gw = await startGateway(yaml('good-key-123'), { file })
  t.teardown(() => gw.close())
  const logged = gw.logs.length
  writeFileSync(file, yaml(SECRET))
  const res = await request(`${gw.adminUrl as string}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 500)
  const answer = await res.body.json() as { error: string, message: string }
  t.match(answer, { result: 'failed', error: 'reload_failed', message: `the new config could not be put in service (${QUOTED}); the active config keeps serving` })
  t.notMatch(JSON.stringify(answer), SECRET, 'not in the reload answer')

  const config = await request(`${gw.adminUrl as string}/config`, { headers: { authorization: `Bearer ${READ}` } })
  const shown = await config.body.json() as { lastReload: unknown }
  t.match(shown.lastReload, { result: 'failed', error: QUOTED })
  t.notMatch(JSON.stringify(shown), SECRET, 'not in GET /config')

  const lines = gw.logs.slice(logged)
  t.match(lines, [{ msg: 'config reload failed while building the new runtime; the active config keeps serving', err: { type: 'PluginSetupError', message: QUOTED, stack: /signingKey \[redacted\] is not valid/ } }])
  t.notMatch(JSON.stringify(lines), SECRET, 'not in the log: message, stack nor cause')
})

t.test('a first start whose plugin setup quotes a secret: `portcullis start` names the problem without it, one process or workers', async t => {
  for (const workers of [1, 2]) {
    writeFileSync(file, yaml(SECRET, workers))
    const run = await runNode([...CLI_FROM_SOURCES, 'start', '-c', file])
    t.equal(run.code, 1, `workers: ${workers}`)
    t.equal(run.stderr, `portcullis: cannot start: ${QUOTED}\n`)
    t.notMatch(run.stdout, SECRET, 'nor in a log line')
  }
})
