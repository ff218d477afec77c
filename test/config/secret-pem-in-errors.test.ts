import t from 'tap'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { ConfigError, formatIssue } from '../../src/config/config-error.ts'
import { createTestCa } from '../helpers/certs.ts'
import { CLI_FROM_SOURCES, runNode } from '../helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

// A private key given as PEM text in `tls.key` (a ${VAR} holding a Kubernetes secret's key, or the
// text pasted) was read as a path: `cannot read "-----BEGIN PRIVATE KEY-----\nMIIE..."`, twice
// (quoted, then in ENOENT's message), in validate, the reload answer, the log and GET /config.
const TOKEN = 'admin-token-0123456789abcdef'
const READ = 'read-token-0123456789abcdef'
const PEM_TEXT = /holds PEM text, not a file path: write the PEM to a file and give that file's path/
// The key's base64 lines: none of them may be shown anywhere.
const body = (pem: string): string[] => pem.split('\n').filter(l => l !== '' && !l.startsWith('-----'))

t.test('a key given as PEM text through a variable is said to be that, and shown nowhere: validate, reload answer, GET /config, log', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const client = ca.issue('client', 'DNS:client.example', { client: true })
  const a = await namedUpstream('a')
  const ROUTE = '  - { name: r, match: { path: /r }, upstream: a }'
  const ADMIN = 'admin:\n  listen: { host: 127.0.0.1, port: 0 }'
  const base = gatewayYaml({ a: [a.url] }, ROUTE).replace(ADMIN, `${ADMIN}\n  token: "${TOKEN}"\n  readToken: "${READ}"`)
  const cf = await configFile(base)
  copyFileSync(client.certFile, join(cf.dir, 'client.pem'))
  const env = { UPSTREAM_CLIENT_KEY: client.key }
  const gw = await startFromFile(cf.file, { env })
  t.teardown(async () => { await gw.close(); await Promise.all([a.close(), cf.remove()]) })

  await cf.write(base.replace(`  a: { targets: [ { url: "${a.url}" } ] }`,
    `  a:\n    targets: [ { url: "${a.url.replace('http:', 'https:')}" } ]\n    tls: { cert: client.pem, key: "\${UPSTREAM_CLIENT_KEY}" }`))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })
  const answer = await res.body.text()
  t.equal(res.statusCode, 422)
  t.match(JSON.parse(answer), { issues: [{ path: 'upstreams.a.tls.key', message: 'holds PEM text, not a file path: write the PEM to a file and give that file\'s path (from the variable UPSTREAM_CLIENT_KEY)' }] })
  const config = await (await request(`${gw.adminUrl}/config`, { headers: { authorization: `Bearer ${READ}` } })).body.text()
  t.match(config, /"result":"invalid"/, 'GET /config shows the rejected reload')
  t.match(config, PEM_TEXT)
  const logs = JSON.stringify(gw.logs)
  t.match(logs, 'config reload rejected')
  const validate = await runNode([...CLI_FROM_SOURCES, 'validate', '-c', cf.file], { env })
  t.equal(validate.code, 1)
  t.match(validate.stderr, PEM_TEXT)
  const outputs: Array<[string, string]> = [['answer', answer], ['GET /config', config], ['log', logs], ['validate', validate.stdout + validate.stderr]]
  for (const [where, text] of outputs) {
    t.notOk(body(client.key).some(line => text.includes(line)), `not in the ${where}`)
    t.notMatch(text, 'PRIVATE KEY', `not even its label in the ${where}`)
  }
})

t.test('PEM text pasted for any TLS file is said to be that, unquoted; a key\'s path is not quoted either', async t => {
  const ca = createTestCa('Portcullis Test CA', fn => t.teardown(fn))
  const leaf = ca.issue('a', 'DNS:a.example')
  const dir = join(ca.certFile, '..')
  // Literal block scalars, as a pasted PEM is written.
  const block = (pem: string, indent: string) => `|\n${pem.trimEnd().split('\n').map(l => indent + l).join('\n')}`
  const issues = async (text: string) => {
    try {
      await parseConfig(text, join(dir, 'gw.yaml'), {})
    } catch (err) {
      if (err instanceof ConfigError) return err.issues.map(formatIssue)
      throw err
    }
    return ['accepted']
  }
  const server = (cert: string, key: string) => `server:\n  listen: { host: 127.0.0.1, port: 0 }\n  tls:\n    certificates:\n      - cert: ${cert}\n        key: ${key}\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes: []\n`
  const upstream = (tls: string) => `server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up:\n    targets: [ { url: "https://127.0.0.1:1" } ]\n    tls:\n${tls}\nroutes: []\n`

  const shown = (found: string[]) => found.join('\n')
  const serverKey = shown(await issues(server('a.pem', block(leaf.key, '          '))))
  t.match(serverKey, /gw\.yaml:6:\d+ server\.tls\.certificates\[0\]\.key: holds PEM text, not a file path/)
  const serverCert = shown(await issues(server(block(leaf.cert, '          '), 'a.key')))
  t.match(serverCert, /gw\.yaml:5:\d+ server\.tls\.certificates\[0\]\.cert: holds PEM text, not a file path/, 'a certificate too: not secret, but no use quoted whole')
  const upstreamKey = shown(await issues(upstream(`      cert: a.pem\n      key: ${block(leaf.key, '        ')}`)))
  t.match(upstreamKey, /upstreams\.up\.tls\.key: holds PEM text, not a file path/)
  const upstreamCa = shown(await issues(upstream(`      ca: ${block(ca.cert, '        ')}`)))
  t.match(upstreamCa, /upstreams\.up\.tls\.ca: holds PEM text, not a file path/)
  const found: Array<[string, string, string]> = [['server key', serverKey, leaf.key], ['server cert', serverCert, leaf.cert], ['upstream key', upstreamKey, leaf.key], ['upstream ca', upstreamCa, ca.cert]]
  for (const [what, text, pem] of found) {
    t.notOk(body(pem).some(line => text.includes(line)), `${what}: its text is not shown`)
    t.notMatch(text, 'BEGIN', `${what}: nor its first line`)
  }

  // A key's value is hidden by GET /config: a problem does not quote it, nor ENOENT's message.
  const missing = shown(await issues(server('a.pem', '/run/secrets/tls-private-0a1b2c.key')))
  t.match(missing, /server\.tls\.certificates\[0\]\.key: cannot read the file it names: ENOENT: no such file or directory, open '\[redacted\]'/)
  t.notMatch(missing, 'tls-private-0a1b2c')
  t.match(shown(await issues(server('nope.pem', 'a.key'))), /server\.tls\.certificates\[0\]\.cert: cannot read "nope\.pem": ENOENT/, 'a certificate\'s path is quoted')
})

t.test('a config problem quoting a secret value of the config (a plugin\'s check) has it hidden', async t => {
  const SECRET = 'partner-key-4f9a0c77e1'
  const cf = await configFile(gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  - { name: r, match: { path: /r }, upstream: a, plugins: { partner: { apiKey: "${PARTNER_KEY}" } } }',
    'loadPlugins: [ ./partner.ts ]'))
  t.teardown(() => cf.remove())
  // A plugin of the user's whose check echoes the value it refuses: the loader cannot know to hide it there.
  writeFileSync(join(cf.dir, 'partner.ts'), `import { definePlugin, Type } from 'portcullis'
export default definePlugin({
  name: 'partner',
  priority: 500,
  schema: Type.Object({ apiKey: Type.String() }),
  check: config => config.apiKey.startsWith('partner-') ? [{ path: ['apiKey'], message: \`"\${config.apiKey}" is a test key: use a live one\` }] : [],
  setup: () => ({})
})
`)
  const validate = await runNode([...CLI_FROM_SOURCES, 'validate', '-c', cf.file], { env: { PARTNER_KEY: SECRET } })
  t.equal(validate.code, 1)
  t.match(validate.stderr, 'routes[0].plugins.partner.apiKey: "[redacted]" is a test key: use a live one')
  t.notMatch(validate.stdout + validate.stderr, SECRET)
})
