import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { replacedTopLevel } from '../../src/config/check-plugins.ts'

/** The ip-filter warnings of a config: `route: lost; lost`. */
async function warnings (plugins: string, routes: Record<string, string>): Promise<string[]> {
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  ip-filter: ${plugins}
routes:
${Object.entries(routes).map(([name, filter]) => `  - { name: ${name}, match: { path: /${name} }, upstream: u, plugins: { ip-filter: ${filter} } }`).join('\n')}
`, 'gw.yaml', {})
  return replacedTopLevel(loaded.config, loaded.plugins).map(w => `${w.route}: ${w.lost.join('; ')}`)
}

// Entries compared as strings warned of a deny the route kept, written otherwise or wider.
t.test('a top-level deny entry a route deny range holds, however written, is kept; one it does not hold is warned of', async t => {
  t.same(await warnings('{ deny: ["2001:db8::/32", 10.0.0.0/8, 10.6.6.6] }', {
    wider: '{ deny: ["2001:DB8::/32", 10.0.0.0/7] }',
    mapped: '{ deny: ["2001:db8::/31", "::ffff:10.0.0.0/104"] }',
    narrower: '{ deny: ["2001:db8::/48", 10.6.6.0/24] }',
    'ipv6-only': '{ deny: ["::/0"] }',
    'elsewhere': '{ deny: [11.0.0.0/8, "2001:db9::/32"] }',
    'allow-only': '{ allow: [127.0.0.1] }'
  }), [
    'narrower: the top-level deny of 2001:db8::/32, 10.0.0.0/8',
    'ipv6-only: the top-level deny of 10.0.0.0/8, 10.6.6.6',
    'elsewhere: the top-level deny of 2001:db8::/32, 10.0.0.0/8, 10.6.6.6',
    'allow-only: the top-level deny of 2001:db8::/32, 10.0.0.0/8, 10.6.6.6'
  ])
  t.same(await warnings('{ allow: [127.0.0.0/8], deny: [10.6.6.6, "::ffff:10.7.7.7"] }', {
    covered: '{ allow: [127.0.0.1], deny: [10.6.6.0/24, 10.7.0.0/16] }',
    'no-allow': '{ deny: [10.6.6.0/24, 10.7.7.0/24] }'
  }), ['no-allow: the top-level allow (127.0.0.0/8): every address the route does not deny passes'])
})
