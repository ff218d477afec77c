import t from 'tap'
import { parseConfig } from '../../src/config/load.ts'
import { issues, ONE_ROUTE_PLUGINS } from '../../test/helpers/config-issues.ts'

const RENAME = 'Set-Cookie cannot be renamed onto on a route with cache: the edits run after the cache, on its hits too, so the header renamed ' +
  '(one client\'s session, stored with the response) would reach every client served from it; the upstream must send Set-Cookie itself (the cache never stores it)'
const SET = 'Set-Cookie cannot be set on a route with cache: the edits run after the cache, so every client, served from it or not, ' +
  'would get the same cookie; the upstream must send Set-Cookie itself (the cache never stores it)'

t.test('on a route with cache, Set-Cookie may not be set or renamed onto: a config error (a hit would hand one client\'s cookie to others)', async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      cache: {}
      response-headers:
        rename: { x-session: set-cookie, X-Other: Set-Cookie, set-cookie: x-upstream-cookie }
        set: { SET-COOKIE: "a=b" }
`), [
    `gw.yaml:12:30 routes[0].plugins.response-headers.rename.x-session: ${RENAME}`,
    `gw.yaml:12:51 routes[0].plugins.response-headers.rename.X-Other: ${RENAME}`,
    `gw.yaml:13:28 routes[0].plugins.response-headers.set.SET-COOKIE: ${SET}`
  ])
})

t.test('a top-level cache counts, and a top-level response-headers is checked on each route; a route that turns cache off may', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  cache: {}
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { response-headers: { rename: { x-session: set-cookie } } } }
  - { name: s, match: { path: /s }, upstream: up, plugins: { cache: false, response-headers: { rename: { x-session: set-cookie } } } }
`), [`gw.yaml:8:103 routes[0].plugins.response-headers.rename.x-session: ${RENAME}`])
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
plugins:
  response-headers: { set: { set-cookie: "a=b" } }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { cache: {} } }
  - { name: s, match: { path: /s }, upstream: up }
`), [`gw.yaml:6:42 plugins.response-headers.set.set-cookie: on route "r" (/r): ${SET}`])
})

t.test('without cache, or renamed from Set-Cookie (the cache stores none), they are allowed', async t => {
  await parseConfig(`${ONE_ROUTE_PLUGINS}      response-headers: { rename: { x-session: set-cookie }, set: { set-cookie: "a=b" } }
`, 'gw.yaml', {})
  await parseConfig(`${ONE_ROUTE_PLUGINS}      cache: {}
      response-headers: { rename: { set-cookie: x-upstream-cookie }, remove: [ set-cookie ] }
`, 'gw.yaml', {})
  t.pass()
})
