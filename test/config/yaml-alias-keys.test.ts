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
const levels = (text: string, n: number): string => `${HEAD}  - id: d\n    metadata:\n      s: &s "${text}"\n` +
  Array.from({ length: n }, (_, i) => `      l${i + 1}: &l${i + 1} [${Array(10).fill(i === 0 ? '*s' : `*l${i}`).join(', ')}]\n`).join('') +
  'routes:\n  - { name: r, match: { path: /a/* }, upstream: up }\n'

t.test('aliases expanding the config past 64 MiB of text are refused at the alias that passes it', async t => {
  const began = performance.now()
  t.same(await issues(t, levels('x'.repeat(20_000), 5)), [
    'gw.yaml:13:26 consumers[1].metadata.l4[2]: aliases expand the config to more than 64 MiB of text with this one: write the values out, or use fewer aliases'
  ])
  t.ok(performance.now() - began < 2000, 'at once')
})

// 16 MiB refused 5,500 routes aliasing one plugins map with a 70-origin CORS list (a 426 KB file, 21 MB of text).
t.test('aliases may expand a small file to 64 MiB of text, a large one to a hundred times its length', async t => {
  const loaded = await parseConfig(levels('x'.repeat(20_000), 3), 'gw.yaml', {})
  t.ok(JSON.stringify(loaded.config.consumers).length > 22_000_000, '22 MB of text from a 20 KB file is read')
  // One 1 MB string: 90 copies load (under 100 MB), 110 pass a hundred times the file's length.
  const copies = (n: number): string => `${HEAD}  - id: d\n    metadata:\n      s: &s "${'x'.repeat(1_000_000)}"\n      l: [${Array(n).fill('*s').join(', ')}]\n` +
    'routes:\n  - { name: r, match: { path: /a/* }, upstream: up }\n'
  const big = await parseConfig(copies(90), 'gw.yaml', {})
  t.equal((big.config.consumers?.[1]?.metadata as { l: string[] }).l.length, 90)
  t.match((await issues(t, copies(110))).join('\n'), /consumers\[1\]\.metadata\.l\[\d+\]: aliases expand the config to more than 96 MiB of text with this one/)
})
