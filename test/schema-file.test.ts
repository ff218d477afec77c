import t from 'tap'
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
})
