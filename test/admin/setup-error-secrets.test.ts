import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { startGateway } from '../helpers/gateway.ts'
import { PluginSetupError } from '../../src/plugins/setup-error.ts'
import { scrubbed } from '../../src/config/redact.ts'
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
`,
  'failer.ts': `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'failer',
  priority: 500,
  schema: Type.Object({ redisUrl: Type.String(), apiUrl: Type.String(), apiKey: Type.String() }),
  setup (config) {
    if (config.redisUrl.startsWith('redis://default:')) throw new Error(\`cannot connect to \${config.redisUrl}; also \${config.apiUrl} refused key \${config.apiKey}; cannot reach http://payments.internal:8080/health for mobile clients (application/json expected)\`)
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
    t.equal(run.stderr.replace(/ \(at [^)]*\/signer\.ts:\d+:\d+\)\n$/, '\n'), `portcullis: cannot start: ${QUOTED}\n`)
    // A worker's error reaches the primary with its cause: where in the plugin it threw.
    t.match(run.stderr, /\(at [^)]*\/signer\.ts:\d+:\d+\)\n$/, 'where the plugin threw')
    t.notMatch(run.stdout, SECRET, 'nor in a log line')
  }
})

// A URL's password and a secret query value in a setup error reached the log line and `start` in
// clear (only values hidden whole were scrubbed); and ordinary words hidden only for where they are
// (a header value `x-service: payments`, a basic-auth username) were scrubbed, the route name too.
const failing = (redisUrl: string, workers = 1) => `server:
  listen: { host: 127.0.0.1, port: 0 }
  workers: ${workers}
admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: "${TOKEN}"
loadPlugins: [./failer.ts]
consumers:
  - { id: app, credentials: { basic-auth: { username: mobile, password: "$scrypt$ln=14,r=8,p=1$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg" } } }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: payments
    match: { path: /p }
    upstream: u
    plugins:
      request-headers: { set: { x-service: payments, accept: application/json } }
      failer: { redisUrl: "${redisUrl}", apiUrl: "https://api.example/v1?api_key=QUERYKEY-SECRET-7", apiKey: "APIKEY-SECRET-8" }
`
const URL_SECRET = /UrlPass-Secret-42|QUERYKEY-SECRET-7|APIKEY-SECRET-8/
const SHOWN = 'route "payments", plugin failer: cannot connect to redis://[redacted]@cache.internal:6379/0; also https://api.example/v1?api_key=[redacted] refused key [redacted]; ' +
  'cannot reach http://payments.internal:8080/health for mobile clients (application/json expected)'

t.test('a setup error quoting a URL password or a secret query value: hidden in the log line too; route names and header words shown', async t => {
  const good = failing('rediss://cache.internal:6379/0')
  writeFileSync(file, good)
  const gw = await startGateway(good, { file })
  t.teardown(() => gw.close())
  const logged = gw.logs.length
  writeFileSync(file, failing('redis://default:UrlPass-Secret-42@cache.internal:6379/0'))
  const res = await request(`${gw.adminUrl as string}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 500)
  t.match(await res.body.json(), { result: 'failed', message: `the new config could not be put in service (${SHOWN}); the active config keeps serving` })
  const lines = gw.logs.slice(logged)
  t.match(lines, [{ msg: 'config reload failed while building the new runtime; the active config keeps serving', err: { type: 'PluginSetupError', message: SHOWN } }])
  t.notMatch(JSON.stringify(lines), URL_SECRET, 'not in the log: message, stack nor cause')
})

t.test('such an error at start: `portcullis start` shows it the same way', async t => {
  writeFileSync(file, failing('redis://default:UrlPass-Secret-42@cache.internal:6379/0'))
  const run = await runNode([...CLI_FROM_SOURCES, 'start', '-c', file])
  t.equal(run.code, 1)
  t.equal(run.stderr.replace(/ \(at [^)]*\/failer\.ts:\d+:\d+\)\n$/, '\n'), `portcullis: cannot start: ${SHOWN}\n`, 'the message, where in the plugin it threw after it')
  t.notMatch(run.stdout, URL_SECRET, 'nor in a log line')
})

t.test('the route and plugin a setup error names are never scrubbed, even when a secret of the config spells them', async t => {
  const err = scrubbed(new PluginSetupError('token-signer', 'partner-key-1', 'partner-key-1 refused: token-signer: bad'), ['partner-key-1', 'token-signer'])
  t.equal(err.message, 'route "partner-key-1", plugin token-signer: [redacted] refused: [redacted]: bad')
  t.match(err.stack, /^PluginSetupError: route "partner-key-1", plugin token-signer: \[redacted\] refused/)
})
