import t from 'tap'
import { join } from 'node:path'
import { request } from 'undici'
import { configSchema } from '../../src/config/schema.ts'
import { builtinPlugins } from '../../src/plugins/registry.ts'
import { redactSecrets } from '../../src/config/redact.ts'
import { startGateway } from '../helpers/gateway.ts'
import { writeUserPlugin } from '../helpers/user-plugin.ts'

const TOKEN = 'admin-token-0123456789abcdef'
const READ = 'read-token-0123456789abcdef'

// A secret named by one lowercase compound word (`privatekey`, `signingkey`) was shown by GET /config,
// readable with the read token: only words ending in password, secret, token... were secret.
t.test('GET /config (read token) hides secrets named by one lowercase word, in a plugin\'s settings and a consumer\'s metadata', async t => {
  const dir = t.testdir({})
  writeUserPlugin(dir, 'signer', 500, '{}')
  const gw = await startGateway(`admin:
  listen: { host: 127.0.0.1, port: 0 }
  token: "${TOKEN}"
  readToken: "${READ}"
loadPlugins: [./signer.ts]
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - name: r
    match: { path: /r }
    upstream: u
    plugins:
      signer:
        privatekey: SECRET-private
        secretkey: SECRET-secret
        accesskey: SECRET-access
        signingkey: SECRET-signing
        encryptionkey: SECRET-encryption
        passcode: SECRET-passcode
        pin: "SECRET-pin"
        passwort: SECRET-passwort
        tokenvalue: SECRET-tokenvalue
        webhook: https://hooks.slack.com/services/T00/B00/SECRET-hook
        region: eu-west-1
        private: "no"
        keyid: k1
consumers:
  - id: alice
    metadata: { masterkey: SECRET-master, clientkey: SECRET-client, hmackey: SECRET-hmac, pin: "SECRET-meta-pin", team: blue, retries: 3 }
`, { file: join(dir, 'gateway.yaml') })
  t.teardown(() => gw.close())
  const res = await request(`${gw.adminUrl as string}/config`, { headers: { authorization: `Bearer ${READ}` } })
  t.equal(res.statusCode, 200)
  const { config } = await res.body.json() as { config: { routes: Array<{ plugins: Record<string, unknown> }>, consumers: Array<{ metadata: unknown }> } }
  t.same(config.routes[0]?.plugins.signer, {
    privatekey: '[redacted]',
    secretkey: '[redacted]',
    accesskey: '[redacted]',
    signingkey: '[redacted]',
    encryptionkey: '[redacted]',
    passcode: '[redacted]',
    pin: '[redacted]',
    passwort: '[redacted]',
    tokenvalue: '[redacted]',
    webhook: 'https://hooks.slack.com/[redacted]',
    region: 'eu-west-1',
    private: 'no',
    keyid: 'k1'
  })
  t.same(config.consumers[0]?.metadata, { masterkey: '[redacted]', clientkey: '[redacted]', hmackey: '[redacted]', pin: '[redacted]', team: 'blue', retries: 3 })
  t.notMatch(JSON.stringify(config), /SECRET/)
})

t.test('numbers and flags that only mention such a word stay shown; a compound word that is no secret too', async t => {
  t.same(redactSecrets({
    a: { pin: 42, tokenlimit: 5, passcode: 12345678, privatekey: 1234, monkey: 'm', turnkey: 't', hotkey: 'h', keyboard: 'k', private: 'x', privacy: 'p', hookless: 'h' },
    b: { slackWebhookUrl: 'https://hooks.example/T1/B1/SECRET', hooks: ['https://a.example/h/SECRET?x=1', 'http://b.example'], notify: { webhook: { url: 'https://c.example/SECRET', method: 'POST' } } }
  }), {
    a: { pin: 42, tokenlimit: 5, passcode: '[redacted]', privatekey: '[redacted]', monkey: 'm', turnkey: 't', hotkey: 'h', keyboard: 'k', private: 'x', privacy: 'p', hookless: 'h' },
    b: { slackWebhookUrl: 'https://hooks.example/[redacted]', hooks: ['https://a.example/[redacted]', 'http://b.example'], notify: { webhook: { url: 'https://c.example/[redacted]', method: 'POST' } } }
  }, 'a number under `pin` (a count, a pinned version) is shown; one ending in a secret word is not; a webhook URL keeps its host')
})

/** Every property of a TypeBox schema, at any depth, with a value of its type: a string for any but a flag, a number or an object (whose properties are listed). */
function properties (schema: unknown, into: Array<[string, unknown]> = []): Array<[string, unknown]> {
  if (Array.isArray(schema)) for (const s of schema) properties(s, into)
  else if (schema !== null && typeof schema === 'object') {
    for (const [k, v] of Object.entries(schema)) {
      if (k === 'properties' && v !== null && typeof v === 'object') {
        for (const [name, sub] of Object.entries(v)) {
          const type = (sub as { type?: unknown }).type
          if (type !== 'object') into.push([name, type === 'boolean' ? true : type === 'integer' || type === 'number' ? 1 : 'x'])
        }
      }
      properties(v, into)
    }
  }
  return into
}

t.test('no setting of the core config or a built-in plugin is newly hidden: only the known secret ones are', async t => {
  const plugins = [...(await builtinPlugins()).values()]
  const all = properties([configSchema(), ...plugins.map(p => p.schema), ...plugins.map(p => p.credentials?.schema)])
  const hidden = new Set(all.filter(([name, value]) => JSON.stringify(redactSecrets({ [name]: value })).includes('[redacted]')).map(([name]) => name))
  t.same([...hidden].sort(), ['cookie', 'key', 'keyPrefix', 'keys', 'password', 'readToken', 'secret', 'sentinelPassword', 'surrogateKeyHeader', 'token'],
    'a rate-limit, cache or jwks setting is shown: only these (surrogateKeyHeader, a header name, as before) are hidden')
})
