import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../src/config/load.ts'
import { ConfigError, formatIssue } from '../src/config/config-error.ts'
import { issues, ONE_ROUTE_PLUGINS } from './helpers/config-issues.ts'

const HEAD = `server:
  listen: { host: 127.0.0.1, port: 0 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
`

t.test('a list written as one value, or routes written as a map, says how to write it', async t => {
  t.same(await issues(t, HEAD + 'routes:\n  - { name: r, match: { path: /a, methods: GET }, upstream: up }\n'),
    ['gw.yaml:6:44 routes[0].match.methods: must be an array: write [GET]'])
  t.same(await issues(t, ONE_ROUTE_PLUGINS + '      rate-limit: { limits: { name: a, requests: 5, window: 1s } }\n'),
    ['gw.yaml:10:29 routes[0].plugins.rate-limit.limits: must be an array: start each item with "- ", or put the value inside [ ]'])
  t.same(await issues(t, HEAD + 'routes:\n  r:\n    match: { path: /a }\n    upstream: up\n'),
    ['gw.yaml:6:3 routes: must be an array: start each route with "- ", as in "- name: api" (its match: and upstream: indented under name:)'])
  // A secret's value is never quoted back.
  t.same(await issues(t, ONE_ROUTE_PLUGINS.replace('routes:', 'consumers:\n  - { id: a, credentials: { key-auth: { keys: k-0123456789abcdef } } }\nroutes:') + '      key-auth:\n'),
    ['gw.yaml:6:47 consumers[0].credentials.key-auth.keys: must be an array: write the value inside [ ]'])
})

t.test('a plugin written among a route\'s keys says plugins go under plugins:', async t => {
  t.same(await issues(t, HEAD + 'routes:\n  - name: r\n    match: { path: /a }\n    upstream: up\n    cache: { defaultTtl: 30s }\n'),
    ['gw.yaml:9:5 routes[0].cache: unknown key "cache" (cache is a plugin: plugins go under plugins:, as plugins: { cache: ... })'])
})

t.test('a plugin a failed loadPlugins entry would define is not also an unknown plugin', async t => {
  const dir = t.testdir({})
  mkdirSync(join(dir, 'add-tenant'))
  writeFileSync(join(dir, 'add-tenant', 'index.ts'), 'throw new Error("broken")\n')
  const file = join(dir, 'gw.yaml')
  const problems = async (text: string) => {
    writeFileSync(file, text)
    try { await loadConfig(file, {}) } catch (err) { if (err instanceof ConfigError) return err.issues.map(formatIssue); throw err }
    return []
  }
  const route = (plugins: string) => HEAD + `routes:\n  - { name: r, match: { path: /a }, upstream: up, plugins: { ${plugins} } }\n`
  t.match(await problems('loadPlugins: [ ./add-tenant/index.ts ]\n' + route('add-tenant: {}')), [/^.*gw\.yaml:1:16 loadPlugins\[0\]: cannot load plugin "\.\/add-tenant\/index\.ts": broken/])
  t.equal((await problems('loadPlugins: [ ./add-tenant/index.ts ]\n' + route('add-tenant: {}'))).length, 1)
  t.match(await problems('loadPlugins: [ ./add-tenant/index.ts ]\n' + route('tenant: {}')), [
    /loadPlugins\[0\]: cannot load plugin/,
    /routes\[0\]\.plugins\.tenant: unknown plugin "tenant": loadPlugins\[0\] failed to load \(above\), and may be what defines it$/
  ])
  t.match(await problems('loadPlugins: [ ./add-tenant/index.ts ]\n' + route('cros: {}')), [/cannot load/, /unknown plugin "cros" \(did you mean "cors"\?\); there are: /], 'a typo of a known plugin is said so')
})
