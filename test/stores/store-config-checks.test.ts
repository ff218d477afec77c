import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { redactSecrets } from '../../src/config/redact.ts'
import { issues } from '../helpers/config-issues.ts'

const config = (store: string) => `server:
  listen: { host: 127.0.0.1, port: 0 }
stores:
  shared: ${store}
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up }
`

t.test('a Cluster store\'s keyPrefix with a brace is refused at its line: the plugins\' hash tags would not count', async t => {
  for (const prefix of ['"{}"', '"x{}:"', '"{pc}:"', '"pc}"']) {
    const found = await issues(t, config(`{ type: redis, cluster: ["127.0.0.1:7000"], keyPrefix: ${prefix} }`))
    t.equal(found.length, 1, prefix)
    t.match(found[0], /^gw\.yaml:4:\d+ stores\.shared\.keyPrefix: must not hold \{ or \} with cluster: .*CROSSSLOT/, prefix)
  }
  // Anywhere else a brace is harmless: one server holds every key.
  for (const where of ['url: "redis://127.0.0.1:6379"', 'sentinels: ["127.0.0.1:26379"], name: mymaster']) {
    await t.resolves(parseConfig(config(`{ type: redis, ${where}, keyPrefix: "{}" }`), 'gw.yaml', {}), where)
  }
  await t.resolves(parseConfig(config('{ type: redis, cluster: ["127.0.0.1:7000"], keyPrefix: "gw:a:" }'), 'gw.yaml', {}), 'a prefix without braces')
})

t.test('sentinel credentials: from the environment, redacted, and for sentinels only', async t => {
  const parsed = await parseConfig(config('{ type: redis, sentinels: ["127.0.0.1:26379"], name: mymaster, sentinelUsername: sen, sentinelPassword: "${SENTINEL_PW}" }'), 'gw.yaml', { SENTINEL_PW: 's3cret' })
  const store = parsed.config.stores?.shared
  t.match(store, { sentinelUsername: 'sen', sentinelPassword: 's3cret' })
  t.notMatch(JSON.stringify(redactSecrets(parsed.config)), /s3cret/, 'hidden in GET /config')
  for (const where of ['url: "redis://127.0.0.1:6379"', 'cluster: ["127.0.0.1:7000"]']) {
    const found = await issues(t, config(`{ type: redis, ${where}, sentinelPassword: pw }`))
    t.match(found, [/^gw\.yaml:4:\d+ stores\.shared\.sentinelPassword: is for sentinels only$/], where)
  }
})
