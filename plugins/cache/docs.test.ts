import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigError, parseConfig } from '../../src/index.ts'
import { formatIssue } from '../../src/config/config-error.ts'

const page = readFileSync(new URL('../../docs/plugins/cache.md', import.meta.url), 'utf8')
const example = /```yaml\n([\s\S]*?)```/.exec(page)?.[1] as string

t.test('the YAML example of docs/plugins/cache.md is a valid config', async t => {
  const loaded = await parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${example}`, 'cache.md')
  t.match(loaded.config.routes[0]?.plugins, { cache: { store: 'shared-cache', maxObjectSize: '512KiB', key: { headers: ['x-tenant'] } } })
})

async function issues (yaml: string): Promise<string> {
  try {
    await parseConfig(`server:\n  listen: { host: 127.0.0.1, port: 0 }\n${yaml}`, 'cache.md')
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map(formatIssue).join('\n')
    throw err
  }
  return 'accepted'
}

t.test('bad cache settings are config errors at their line', async t => {
  t.match(await issues(example.replace('store: shared-cache', 'store: shared')), /^cache\.md:15:16 routes\[0\]\.plugins\.cache\.store: .*"shared"/)
  t.equal(await issues(example.replace('defaultTtl: 30s', 'defaultTtl: soon')),
    'cache.md:19:21 routes[0].plugins.cache.defaultTtl: must be a duration: milliseconds as a number, or a string such as 5s, 2m, 1h, 30d (got "soon")')
  t.match(await issues(example.replace('methods: [GET, HEAD]', 'methods: [GET, POST]')), /^cache\.md:17:\d+ routes\[0\]\.plugins\.cache\.methods/)
})

t.test('the schema refuses what the cache cannot use', async t => {
  const route = (cache: string) => `upstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nroutes:\n  - name: r\n    match: { path: /* }\n    upstream: up\n    plugins:\n      cache: ${cache}\n`
  t.equal(await issues(route('{ name: Edge-1, maxObjectSize: 1, methods: [GET], statuses: [200, 599], key: { query: { include: [a], ignore: [b] }, headers: [X-A] }, bypass: { headers: [X-B], cookies: [c] }, surrogateKeyHeader: X-Tags, requestCacheControl: honor }')), 'accepted')
  for (const bad of ['{ name: "a b" }', '{ maxObjectSize: 0 }', '{ maxObjectSize: 0KiB }', '{ maxObjectSize: 1 MBytes }', '{ methods: [GET, GET] }', '{ statuses: [199] }', '{ statuses: [600] }', '{ statuses: [200, 200] }',
    '{ key: { headers: ["x a"] } }', '{ key: { query: { include: [""] } } }', '{ key: { query: { ignore: [""] } } }', '{ key: { query: { other: [a] } } }', '{ key: { other: 1 } }',
    '{ bypass: { cookies: [""] } }', '{ bypass: { other: 1 } }', '{ surrogateKeyHeader: "a b" }', '{ requestCacheControl: always }', '{ other: 1 }']) {
    t.not(await issues(route(bad)), 'accepted', bad)
  }
})
