import t from 'tap'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'

const A_DURATION = 'must be a duration: milliseconds as a number, or a string such as'

t.test('a duration written with a space, a spelt-out unit or an unknown word is quoted, with what it seems meant as', async t => {
  t.same(await issues(t, `server:
  listen: { host: 127.0.0.1, port: 0 }
  shutdownTimeout: 10 s
  keepAliveTimeout: 30sec
  pluginTimeout: 5 m
  clientTimeouts: { headers: "\${T:-soon}" }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes: []
`), [
    `gw.yaml:3:20 server.shutdownTimeout: ${A_DURATION} 500ms, 5s, 2m (no space between the number and the unit: "10 s" is written 10s)`,
    `gw.yaml:4:21 server.keepAliveTimeout: ${A_DURATION} 500ms, 5s, 2m (units are ms, s, m, h and d: "30sec" is written 30s)`,
    'gw.yaml:5:18 server.pluginTimeout: must be a duration of more than 0 and at most 24 days: milliseconds as a number, or a string such as 500ms, 5s, 2m (no space between the number and the unit: "5 m" is written 5m)',
    `gw.yaml:6:30 server.clientTimeouts.headers: ${A_DURATION} 500ms, 5s, 2m (got "soon" from "\${T:-soon}")`
  ])
})

t.test("a plugin's long duration (cache) is explained alike, not led by its maximum", async t => {
  t.same(await issues(t, `${ONE_ROUTE_PLUGINS}      cache: { defaultTtl: 30 s, heuristicMax: 1 day, staleIfError: never }\n`), [
    `gw.yaml:10:28 routes[0].plugins.cache.defaultTtl: ${A_DURATION} 5s, 2m, 1h, 30d (no space between the number and the unit: "30 s" is written 30s)`,
    `gw.yaml:10:48 routes[0].plugins.cache.heuristicMax: ${A_DURATION} 5s, 2m, 1h, 30d (no space between the number and the unit: "1 day" is written 1d)`,
    `gw.yaml:10:69 routes[0].plugins.cache.staleIfError: ${A_DURATION} 5s, 2m, 1h, 30d (got "never")`
  ])
})

t.test('a bare number refused as too short says it is milliseconds', async t => {
  t.same(await issues(t, `server: { listen: { host: 127.0.0.1, port: 0 } }
routes: []
upstreams:
  a: { targets: [ { url: "http://a.test:1", resolve: dns, dnsInterval: 30 } ] }
`), ['gw.yaml:4:72 upstreams.a.targets[0].dnsInterval: must be at least 1s: a name looked up more often loads its DNS servers for nothing (30 is milliseconds: did you mean 30s?)'])
})
