import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { replacedTopLevel } from '../src/config/check-plugins.ts'
import { locate } from '../src/config/positions.ts'
import { readYaml } from '../src/config/yaml-document.ts'

const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
`

/** The warnings of a config: `route plugin: lost; lost`. */
async function warnings (text: string): Promise<string[]> {
  const loaded = await parseConfig(HEAD + text, 'gw.yaml', {})
  return replacedTopLevel(loaded.config, loaded.plugins).map(w => `${w.route} ${w.plugin}: ${w.lost.join('; ')}`)
}

t.test('a route entry that drops a top-level deny or allow, or raises a size limit, is warned of, naming the route, the plugin and what is lost', async t => {
  t.same(await warnings(`plugins:
  ip-filter: { deny: [127.0.0.0/8, "2001:db8::/32"] }
  request-size: { maxBody: 100, maxHeaders: 50 }
  acl: { deny: { consumers: [banned], groups: [blocked] } }
routes:
  - { name: g, match: { path: /g }, upstream: u }
  - name: r
    match: { path: /r }
    upstream: u
    plugins:
      ip-filter: { allow: [127.0.0.1], deny: ["2001:db8::/32"] }
      request-size: { maxUrl: 4096, maxHeaders: 60 }
      acl: { allow: { groups: [staff] }, deny: { groups: [blocked] } }
`), [
    'r acl: the top-level deny of consumers banned',
    'r ip-filter: the top-level deny of 127.0.0.0/8',
    'r request-size: maxBody goes up from 100 to 1MiB (the default)'
  ])
  const loaded = await parseConfig(HEAD + `plugins:
  ip-filter: { deny: [127.0.0.0/8] }
routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { ip-filter: { allow: [127.0.0.1] } } }
`, 'gw.yaml', {})
  const [warning] = replacedTopLevel(loaded.config, loaded.plugins)
  t.equal(warning?.message, 'route "r": its ip-filter replaces the top-level one (the two are not merged): the top-level deny of 127.0.0.0/8; ' +
    'repeat in the route\'s entry what it should keep')
  // Where the route's entry is, for the warning's file:line:col.
  t.same(warning?.at, ['routes', 0, 'plugins', 'ip-filter'])
  const { doc, lines } = readYaml(loaded.text)
  t.same(locate(doc, lines, warning?.at ?? [], 'key'), { line: 8, col: 61 })
})

t.test('a top-level allow the route has none of is lost too', async t => {
  t.same(await warnings(`plugins:
  ip-filter: { allow: [10.0.0.0/8] }
  acl: { allow: { consumers: [alice], groups: [staff] } }
routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { ip-filter: { deny: [10.6.6.6] }, acl: { deny: { consumers: [bob] } } } }
  - { name: own, match: { path: /own }, upstream: u, plugins: { ip-filter: { allow: [192.0.2.0/24] }, acl: { allow: { groups: [admins] } } } }
`), [
    'r acl: the top-level allow (consumers alice and groups staff): every consumer the route does not deny passes, and requests without one',
    'r ip-filter: the top-level allow (10.0.0.0/8): every address the route does not deny passes'
  ], 'a route with an allow of its own means to replace it')
})

t.test('no warning for a route that keeps what the top level has, turns the plugin off, or lowers a limit', async t => {
  t.same(await warnings(`plugins:
  ip-filter: { deny: [127.0.0.0/8] }
  request-size: { maxBody: 10MiB, maxUrl: 4096 }
  acl: { deny: { consumers: [banned] } }
routes:
  - { name: g, match: { path: /g }, upstream: u }
  - { name: repeats, match: { path: /repeats }, upstream: u, plugins: { ip-filter: { allow: [127.0.0.1], deny: [127.0.0.0/8, 10.0.0.0/8] }, acl: { allow: { groups: [staff] }, deny: { consumers: [banned, bob] } } } }
  - { name: off, match: { path: /off }, upstream: u, plugins: { ip-filter: false, request-size: false, acl: false } }
  - { name: lower, match: { path: /lower }, upstream: u, plugins: { request-size: { maxBody: 1KiB, maxUrl: 4096 } } }
  - { name: default-lower, match: { path: /default-lower }, upstream: u, plugins: { request-size: { maxUrl: 2048 } } }
`), [])
  t.same(await warnings(`routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { ip-filter: { allow: [127.0.0.1] }, request-size: { maxBody: 1GiB } } }
`), [], 'nothing at the top level: nothing replaced')
})
