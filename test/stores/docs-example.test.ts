import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseConfig } from '../../src/config/load.ts'

t.test('the stores: example of docs/stores.md is a valid config', async t => {
  const doc = readFileSync(new URL('../../docs/stores.md', import.meta.url), 'utf8')
  const example = /```yaml\n([\s\S]*?)```/.exec(doc)?.[1]
  t.match(example, /^stores:\n/, 'the page starts with a stores: example')
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
${example}upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: all, match: { path: / }, upstream: up }
`, 'stores.yaml', { REDIS_PASSWORD: 'pw' })
  t.same(Object.keys(loaded.config.stores ?? {}), ['shared', 'secured', 'ha', 'big', 'local'])
  t.match(loaded.config.stores?.shared, { type: 'redis', url: 'redis://127.0.0.1:6379', keyPrefix: 'pc:' })
})
