import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { issues } from '../helpers/config-issues.ts'

// yaml compares keys as nodes: an alias used as a key passed the check for a key written twice.
// `key-auth: { }` then `*ka : false` loaded key-auth: false (auth off) while the file showed key-auth: {}.
const HEAD = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\nconsumers:\n  - { id: c, credentials: { key-auth: { keys: [ "abcdefabcdefabcdef" ] } } }\n'

t.test('an alias as a map key is refused at its line', async t => {
  t.same(await issues(t, `${HEAD}plugins:\n  &ka key-auth: {}\nroutes:\n  - name: r\n    match: { path: /a/* }\n    upstream: up\n    plugins:\n      key-auth: { }\n      *ka : false\n`), [
    'gw.yaml:15:7 routes[0].plugins: an alias (*name) as a key: write the key itself'
  ], 'a plugin turned off beside itself')
  t.same(await issues(t, `${HEAD}routes:\n  - name: r\n    match: &m { path: /a/* }\n    upstream: up\n    plugins:\n      request-headers: { set: { *m : v } }\n`), [
    'gw.yaml:12:33 routes[0].plugins.request-headers.set: an alias (*name) as a key: write the key itself'
  ], 'an alias of a map as a key')
})

// The expansion limit counted values only: one 20 KB string aliased 111,000 times (2 GB of text, a
// 20 KB file) took validate 15 s of CPU, and GET /config 18 s and 743 MB before it failed.
t.test('aliases expanding the config past 16 MiB of text are refused at the alias that passes it', async t => {
  const levels = (text: string, n: number) => `${HEAD}  - id: d\n    metadata:\n      s: &s "${text}"\n` +
    Array.from({ length: n }, (_, i) => `      l${i + 1}: &l${i + 1} [${Array(10).fill(i === 0 ? '*s' : `*l${i}`).join(', ')}]\n`).join('') +
    'routes:\n  - { name: r, match: { path: /a/* }, upstream: up }\n'
  const began = performance.now()
  t.same(await issues(t, levels('x'.repeat(20_000), 5)), [
    'gw.yaml:12:51 consumers[1].metadata.l3[7]: aliases expand the config to more than 16 MiB of text with this one: write the values out, or use fewer aliases'
  ])
  t.ok(performance.now() - began < 2000, 'at once')
  const loaded = await parseConfig(levels('x'.repeat(1_000), 3), 'gw.yaml', {})
  t.equal(JSON.stringify(loaded.config.consumers).length > 1_000_000, true, 'a megabyte of text is read')
})
