import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { replacedTopLevel } from '../../src/config/check-plugins.ts'

/** The `plugin` warnings of a config: `route: lost; lost`. */
async function warnings (plugin: string, top: string, routes: Record<string, string>): Promise<string[]> {
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  ${plugin}: ${top}
routes:
${Object.entries(routes).map(([name, edits]) => `  - { name: ${name}, match: { path: /${name} }, upstream: u, plugins: { ${plugin}: ${edits} } }`).join('\n')}
`, 'gw.yaml', {})
  return replacedTopLevel(loaded.config, loaded.plugins).filter(w => w.plugin === plugin).map(w => `${w.route}: ${w.lost.join('; ')}`)
}

const top = '{ remove: [ Server, x-powered-by ], rename: { x-a: x-b }, set: { X-Frame-Options: DENY, x-c: "1" } }'
for (const plugin of ['response-headers', 'request-headers']) {
  t.test(`${plugin}: a route's entry that does not name a top-level edit's header is warned of (the two are not merged)`, async t => {
    t.same(await warnings(plugin, top, {
      all: '{ remove: [ server, X-Powered-By ], rename: { X-A: x-b }, set: { x-frame-options: SAMEORIGIN, x-c: "2" } }',
      // Named otherwise: the route decided on that header.
      otherwise: '{ rename: { server: x-server }, set: { x-powered-by: none, x-b: "1" }, remove: [ x-a, x-frame-options, x-c ] }',
      some: '{ remove: [ server ], set: { x-frame-options: DENY } }',
      own: '{ set: { x-d: "1" } }'
    }), [
      'some: the top-level remove of x-powered-by; the top-level rename of x-a to x-b; the top-level set of x-c',
      'own: the top-level remove of Server, x-powered-by; the top-level rename of x-a to x-b; the top-level set of X-Frame-Options, x-c'
    ])
  })
}

t.test('the warning names the route, the plugin and what is lost; a route that turns the plugin off is not warned of', async t => {
  const loaded = await parseConfig(`server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  response-headers: { remove: [ server ] }
routes:
  - { name: r, match: { path: /r }, upstream: u, plugins: { response-headers: { set: { x-a: "1" } } } }
  - { name: off, match: { path: /off }, upstream: u, plugins: { response-headers: false } }
  - { name: top, match: { path: /top }, upstream: u }
`, 'gw.yaml', {})
  t.same(replacedTopLevel(loaded.config, loaded.plugins).map(w => w.message), [
    'route "r": its response-headers replaces the top-level one (the two are not merged): the top-level remove of server; repeat in the route\'s entry what it should keep'
  ])
})

t.test('request-headers: a route naming a header in its other spelling (x-foo for x_foo) is not warned of; response-headers keeps them apart', async t => {
  const routes = { dashed: '{ remove: [ x-foo ] }' }
  t.same(await warnings('request-headers', '{ remove: [ x_foo ] }', routes), [])
  t.same(await warnings('response-headers', '{ remove: [ x_foo ] }', routes), ['dashed: the top-level remove of x_foo'])
})
