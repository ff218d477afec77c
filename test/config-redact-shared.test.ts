import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { hiddenValues, redactSecrets } from '../src/config/redact.ts'

// An alias is the same JS object wherever it is used: GET /config copied it, and hiddenValues walked it,
// once per use (5,500 routes sharing one 70-origin CORS map: 2.4 s), not once per object.
const CONFIG = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
consumers:
  - id: c
    metadata:
      plain: &m { note: hello-world-note }
      secrets: *m
      ids: &l [ abcdef-123456 ]
      tokens: *l
routes:
  - { name: r0, match: { path: /r0/* }, upstream: up, plugins: &common { cors: { origins: [ "https://a.example.com" ] } } }
  - { name: r1, match: { path: /r1/* }, upstream: up, plugins: *common }
  - { name: r2, match: { path: /r2/* }, upstream: up, plugins: *common }
`

t.test('a value aliased in the config is copied once where it is shown alike, and as each place shows it', async t => {
  const { config } = await parseConfig(CONFIG, 'gw.yaml', {})
  const shown = redactSecrets(config) as { routes: Array<{ plugins: unknown }>, consumers: Array<{ metadata: Record<string, { note: string }> }> }
  t.equal(shown.routes[1]?.plugins, shown.routes[2]?.plugins, 'one copy for the routes sharing it')
  t.match(shown.routes[2]?.plugins, { cors: { origins: ['https://a.example.com'] } })
  const metadata = shown.consumers[0]?.metadata
  t.equal(metadata?.plain?.note, 'hello-world-note', 'shown under a plain key')
  t.equal(metadata?.secrets?.note, '[redacted]', 'hidden under a secret\'s, the same object')
  t.same(metadata?.ids, ['abcdef-123456'])
  t.same(metadata?.tokens, ['[redacted]'])
  t.same(hiddenValues(config), ['abcdef-123456'], 'a list hidden under one key of the two it is under')
})
