import t from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'

// Ajv reads "Infinity", "1e309" or "-1e400" where a number is asked for as ±Infinity, and its
// minimum and maximum let such a number pass: such configs were valid, then start crashed with a
// stack trace (a port, a pool size, keepAliveTimeout), or every request failed or hung.
const config = (server: string, upstream: string) => `server:
  listen: { host: 127.0.0.1, port: ${server} }
upstreams:
  up:
    targets: [ { url: "http://127.0.0.1:1" } ]
${upstream}
routes:
  - { name: r, match: { path: /* }, upstream: up }
`

t.test('a number that is not finite, quoted or from a ${VAR}, is refused where it is', async t => {
  t.same(await issues(t, config('"${PORT:-8080}"', '    connections: "-1e400"\n    timeouts: { connect: "Infinity" }'), { PORT: 'Infinity' }), [
    'gw.yaml:2:36 server.listen.port: must be a finite number, not Infinity (from "${PORT:-8080}")',
    'gw.yaml:6:18 upstreams.up.connections: must be a finite number, not -1e400, read as -Infinity',
    'gw.yaml:7:26 upstreams.up.timeouts.connect: must be a finite number, not Infinity'
  ])
  t.same(await issues(t, config('"1e309"', '    pipelining: "-Infinity"\n    healthCheck: { path: /h, interval: "Infinity" }')), [
    'gw.yaml:2:36 server.listen.port: must be a finite number, not 1e309, read as Infinity',
    'gw.yaml:6:17 upstreams.up.pipelining: must be a finite number, not -Infinity',
    'gw.yaml:7:40 upstreams.up.healthCheck.interval: must be a finite number, not Infinity'
  ])
})

t.test('a duration written as a number too large for a double is refused, not read as Infinity', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
  keepAliveTimeout: 1e309
  shutdownTimeout: -1e400
  clientTimeouts: { headers: "\${T}" }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
`, { T: '1e999' }), [
    'gw.yaml:3:21 server.keepAliveTimeout: must be a finite number, not 1e309, read as Infinity',
    'gw.yaml:4:20 server.shutdownTimeout: must be a finite number, not -1e400, read as -Infinity',
    'gw.yaml:5:30 server.clientTimeouts.headers: must be a finite number, not 1e999, read as Infinity (from "${T}")'
  ])
})

t.test('a number that is not finite in a plugin\'s config is refused by its schema; text is still text', async t => {
  t.same(await issues(t, ONE_ROUTE_PLUGINS + `      request-size: { maxUrl: "Infinity", maxHeaders: 1e309 }
`), [
    'gw.yaml:10:31 routes[0].plugins.request-size.maxUrl: must be a finite number, not Infinity',
    'gw.yaml:10:55 routes[0].plugins.request-size.maxHeaders: must be an integer (a finite number, not 1e309, read as Infinity)'
  ])
  // Where the schema asks for a string, the value is the text as written.
  const loaded = await parseConfig(ONE_ROUTE_PLUGINS + `      request-headers: { set: { x-big: 1e999, x-inf: "Infinity" } }
`, 'gw.yaml', {})
  t.same(loaded.config.routes[0]?.plugins?.['request-headers'], { set: { 'x-big': '1e999', 'x-inf': 'Infinity' } })
})
