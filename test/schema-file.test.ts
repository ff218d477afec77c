import t from 'tap'
import { Ajv } from 'ajv'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { SCHEMA_FILE, schemaJson } from '../src/config/emit-schema.ts'
import { loadConfig } from '../src/config/load.ts'

t.test('config/gateway.schema.json is what the schema code produces (run `npm run schema` after changing it)', async t => {
  t.equal(await readFile(SCHEMA_FILE, 'utf8'), await schemaJson())
})

t.test('config/gateway.yaml, the default config, is valid with and without its variables set', async t => {
  const file = fileURLToPath(new URL('../config/gateway.yaml', import.meta.url))
  const defaults = await loadConfig(file, {})
  t.same(defaults.config.server.listen, { host: '0.0.0.0', port: 8080 })
  t.ok(defaults.config.routes.length > 0, 'it has routes')
  const set = await loadConfig(file, { HOST: '127.0.0.1', PORT: '9000', USERS_URL: 'http://10.0.0.5:3000' })
  t.same(set.config.server.listen, { host: '127.0.0.1', port: 9000 })
  t.equal(set.config.upstreams.users?.targets[0]?.url, 'http://10.0.0.5:3000')
  t.equal(defaults.config.admin?.readToken, undefined, 'no read-only token while ADMIN_READ_TOKEN is unset')
  const tokens = await loadConfig(file, { ADMIN_TOKEN: 'admin-token-0123456789', ADMIN_READ_TOKEN: 'read-token-0123456789' })
  t.match(tokens.config.admin, { token: 'admin-token-0123456789', readToken: 'read-token-0123456789' })
})

t.test("the editors' schema spells out each built-in plugin's consumer entries, and an editor's validator reads them", async t => {
  const schema = JSON.parse(await readFile(SCHEMA_FILE, 'utf8'))
  const consumers = schema.properties.consumers
  const entries = consumers.items.properties
  t.match(entries.credentials.properties['key-auth'].properties.keys, { type: 'array', description: "This consumer's API keys." })
  t.match(entries.credentials.properties['basic-auth'].properties.username, { description: 'The user name (unique across consumers).', anyOf: [{ type: 'string' }, { type: 'string', pattern: /^\^/ }] })
  t.match(entries.metadata.properties['rate-limit'], { description: "Per-consumer values of this consumer's limits, keyed by limit name." })
  t.equal(entries.credentials.additionalProperties, true, "your own plugins' entries are allowed too")
  const validate = new Ajv({ allErrors: true, strict: false }).compile(consumers)
  const good = [{ id: 'a', credentials: { 'key-auth': { keys: ['k-0123456789abcdef'] } }, metadata: { 'rate-limit': { burst: { requests: 5 } } } }]
  t.ok(validate(good), JSON.stringify(validate.errors))
  t.notOk(validate([{ id: 'a', credentials: { 'key-auth': { keys: 'k-0123456789abcdef' } } }]))
  t.match(validate.errors, [{ instancePath: '/0/credentials/key-auth/keys', keyword: 'type' }])
})

t.test("every shipped config is valid under the editors' schema, compiled whole as an editor's validator does", async t => {
  const { readdir } = await import('node:fs/promises')
  const { parse } = await import('yaml')
  const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(await readFile(SCHEMA_FILE, 'utf8')))
  const dir = new URL('../config/', import.meta.url)
  const files = [
    ...(await readdir(dir)).filter(f => f.endsWith('.yaml')),
    ...(await readdir(new URL('examples/', dir))).filter(f => f.endsWith('.yaml')).map(f => `examples/${f}`)
  ]
  t.ok(files.length >= 7, files.join(' '))
  for (const file of files) {
    const ok = validate(parse(await readFile(new URL(file, dir), 'utf8')))
    t.ok(ok, `config/${file}: ${JSON.stringify(validate.errors?.slice(0, 3))}`)
  }
  // Not weakened past ${VAR}: a wrong value is still refused, a plugin entry still checked.
  const base = { server: { listen: { port: 8080 } }, upstreams: { u: { targets: [{ url: 'http://a:1' }] } } }
  const route = (plugins: unknown) => ({ ...base, routes: [{ name: 'r', match: { path: '/' }, upstream: 'u', plugins }] })
  t.ok(validate({ ...base, server: { listen: { port: '${PORT:-8080}' } }, routes: [] }))
  t.notOk(validate({ ...base, server: { listen: { port: 'abc' } }, routes: [] }))
  const port = (value: string) => validate({ ...base, server: { listen: { port: value } }, routes: [] })
  for (const ok of ['${PORT}', '${PORT-8080}', '${PORT:?set PORT}', '${PORT:-${DEFAULT_PORT}}']) t.ok(port(ok), ok)
  // Refused as the runtime refuses them: unclosed, not the whole value, `$${` (a literal), no name.
  for (const bad of ['${PORT', 'x${A}y oops', '${A}${B}', '$${PORT}', '${1}', '${PORT:=8080}']) t.notOk(port(bad), bad)
  // A string field takes a reference anywhere, and only a closed one.
  const target = (url: string) => validate({ ...base, upstreams: { u: { targets: [{ url }] } }, routes: [] })
  for (const ok of ['${USERS_URL}', '${USERS_URL:-http://users:3000}', '${SCHEME}://users:3000']) t.ok(target(ok), ok)
  for (const bad of ['${USERS_URL', '$${USERS_URL}']) t.notOk(target(bad), bad)
  t.ok(validate(route({ cors: { origins: ['https://a.example'] } })), JSON.stringify(validate.errors?.slice(0, 3)))
  t.notOk(validate(route({ cors: { origins: 5 } })))
  t.ok(validate(route({ cors: false })))
})
