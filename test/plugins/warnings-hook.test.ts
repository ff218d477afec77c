import t, { type Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { startGateway } from '../helpers/gateway.ts'
import { runCliHere } from '../helpers/run-cli.ts'
import { startUpstream } from '../helpers/upstream.ts'

// Plugins had no way to warn at load of a valid config that is likely a mistake: only the core's
// warnings reached `validate` (at file:line:column) and the start's log. A plugin's `warnings`
// hook is asked for each route's use of it; its messages are placed at that use's key.
const INDEX = JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)

const PLUGIN = `import { definePlugin, Type } from ${INDEX}
export default definePlugin({
  name: 'notes',
  priority: 100,
  schema: Type.Object({ say: Type.Optional(Type.String()), mode: Type.Optional(Type.String({ default: 'plain' })) }),
  warnings (config, ctx) {
    if (config.mode === 'throw') throw new Error('cannot tell')
    if (config.mode === 'promise') return Promise.resolve([]) as never
    if (config.mode === 'text') return 'not a list' as never
    if (config.mode === 'fixed') return [config.say ?? '']
    if (config.mode === 'many') return Array.from({ length: 10_000 }, (_, i) => \`number \${i}\`)
    if (config.mode === 'long') return ['x'.repeat(5_000_000)]
    if (config.mode === 'mutate') return [mutate(config, ctx)]
    const uses = ctx.plugins.map(p => p.name).join(',')
    return config.say === undefined ? [] : [\`\${config.say} (\${config.mode}): \${uses}; consumers \${ctx.consumers.all.map(c => c.id).join(',')}\`]
  },
  setup: () => ({})
})

// Each change tried, in strict code as a plugin's: whether it took.
function mutate (config, ctx) {
  const tried = (change) => { try { return change() !== false } catch { return false } }
  const keyAuth = ctx.plugins.find(p => p.name === 'key-auth')?.config
  const credential = ctx.consumers.credentialsFor('key-auth')[0]?.credential
  return 'changed: ' + [
    tried(() => Reflect.set(config, 'say', 'changed')),
    tried(() => Reflect.set(keyAuth, 'anonymous', 'guest')),
    tried(() => credential.keys.push('sha256:' + '0'.repeat(64))),
    tried(() => Reflect.set(ctx.consumers.all[0].metadata.team, 'name', 'changed'))
  ].join(',')
}
`

const YAML = `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./notes.ts ]
consumers:
  - id: alice
plugins:
  notes: { say: top }
upstreams:
  u: { targets: [ { url: "http://127.0.0.1:9" } ] }
routes:
  - name: inherits
    match: { path: /a/* }
    upstream: u
    plugins:
      compress: {}
  - name: again
    match: { path: /b/* }
    upstream: u
  - name: own
    match: { path: /c/* }
    upstream: u
    plugins:
      notes: { say: mine }
  - name: off
    match: { path: /d/* }
    upstream: u
    plugins:
      notes: false
  - name: throws
    match: { path: /e/* }
    upstream: u
    plugins:
      notes: { mode: throw }
  - name: promises
    match: { path: /f/* }
    upstream: u
    plugins:
      notes: { mode: promise }
  - name: text
    match: { path: /g/* }
    upstream: u
    plugins:
      notes: { mode: text }
`

function writeConfig (t: Test, yaml = YAML): string {
  const dir = t.testdir({ 'notes.ts': PLUGIN })
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, yaml)
  return file
}

const EXPECTED = [
  // A top-level config: asked for each route that uses it, each message at the top-level key.
  // A top-level config: asked for each route that uses it, each message at the top-level key; the platform names the route.
  { line: 7, col: 3, path: 'plugins.notes', message: 'route "inherits": top (plain): compress,notes; consumers alice' },
  { line: 7, col: 3, path: 'plugins.notes', message: 'route "again": top (plain): notes; consumers alice' },
  { line: 23, col: 7, path: 'routes[2].plugins.notes', message: 'route "own": mine (plain): notes; consumers alice' },
  // Never a failed load: a hook that throws, or returns what is not its messages, is a warning naming the plugin.
  { line: 33, col: 7, path: 'routes[4].plugins.notes', message: 'route "throws": plugin "notes": its warnings hook threw: cannot tell' },
  { line: 38, col: 7, path: 'routes[5].plugins.notes', message: 'route "promises": plugin "notes": its warnings hook returned a promise: it must be synchronous' },
  { line: 43, col: 7, path: 'routes[6].plugins.notes', message: 'route "text": plugin "notes": its warnings hook must return an array of messages (strings)' }
]

t.test('a plugin\'s warnings are placed at the key of the config they are about', async t => {
  const file = writeConfig(t)
  const loaded = await parseConfig(YAML, file, {})
  t.same(loaded.warnings?.map(w => ({ line: w.line, col: w.col, path: w.path, message: w.message })), EXPECTED)
  t.ok(loaded.warnings?.every(w => w.file === file))
})

t.test('validate prints them at file:line:column', async t => {
  const file = writeConfig(t)
  const run = await runCliHere('validate', '-c', file)
  t.equal(run.code, 0, 'valid, with warnings')
  t.same(run.stderr.split('\n').filter(l => l !== '').sort(), EXPECTED.map(w => `${file}:${w.line}:${w.col} warning: ${w.path}: ${w.message}`).sort())
  t.match(run.stdout, 'valid (7 routes, 1 upstream)')
})

t.test('the same message at the same key is kept once', async t => {
  const yaml = YAML.replace('notes: { say: top }', 'notes: { say: "said once", mode: fixed }')
  const loaded = await parseConfig(yaml, writeConfig(t, yaml), {})
  t.same(loaded.warnings?.filter(w => w.path === 'plugins.notes').map(w => w.message), ['routes "inherits" and "again": said once'], 'not once for each of the two routes that use it')
})

// Routes r0..r(n-1), each inheriting the top-level plugins.
const manyRoutes = (n: number) => Array.from({ length: n }, (_, i) => `  - name: r${i}\n    match: { path: /r${i}/* }\n    upstream: u\n`).join('')
const routesOnly = (yaml: string, routes: string) => yaml.slice(0, yaml.indexOf('routes:\n') + 'routes:\n'.length) + routes

t.test('a message said at a top-level key for many routes is one warning naming three of them', async t => {
  const yaml = routesOnly(YAML.replace('notes: { say: top }', 'notes: { say: "said once", mode: fixed }'), manyRoutes(200))
  const loaded = await parseConfig(yaml, writeConfig(t, yaml), {})
  t.same(loaded.warnings?.map(w => [w.path, w.message]), [['plugins.notes', 'routes "r0", "r1", "r2" and 197 more: said once']])
})

t.test('what a hook says is capped and printable', async t => {
  const yaml = routesOnly(YAML, `  - name: many
    match: { path: /a/* }
    upstream: u
    plugins:
      notes: { mode: many }
  - name: long
    match: { path: /b/* }
    upstream: u
    plugins:
      notes: { mode: long }
  - name: escapes
    match: { path: /c/* }
    upstream: u
    plugins:
      notes: { mode: fixed, say: "one\\nroutes[9]: fake\\r\\u001b[31mred\\u202e" }
`)
  const file = writeConfig(t, yaml)
  const loaded = await parseConfig(yaml, file, {})
  const of = (route: number) => loaded.warnings?.filter(w => w.path === `routes[${route}].plugins.notes`).map(w => w.message) ?? []
  t.same(of(0), [...Array.from({ length: 20 }, (_, i) => `route "many": number ${i}`), 'route "many": …and 9980 more'], 'at most 20 messages of a plugin on a route')
  t.equal(of(1).length, 1)
  t.equal(of(1)[0], `route "long": ${'x'.repeat(999)}…`, 'each at most 1,000 characters')
  t.same(of(2), ['route "escapes": one\\u000aroutes[9]: fake\\u000d\\u001b[31mred\\u202e'], 'control characters escaped')
  const run = await runCliHere('validate', '-c', file)
  t.equal(run.code, 0)
  t.equal(run.stderr.split('\n').filter(l => l !== '').length, 23, 'one line each')
  t.notOk(run.stderr.includes('\u001b') || run.stderr.includes('\r'), 'no escape sequence or carriage return printed')
})

t.test('a hook cannot change the config setup runs with', async t => {
  const upstream = await startUpstream()
  t.teardown(() => upstream.close())
  const yaml = `server:
  listen: { host: 127.0.0.1, port: 0 }
loadPlugins: [ ./notes.ts ]
consumers:
  - id: client
    metadata: { team: { name: a } }
    credentials:
      key-auth: { keys: [ "sha256:${'1'.repeat(64)}" ] }
  - id: guest
plugins:
  key-auth: {}
  notes: { say: kept, mode: mutate }
upstreams:
  u: { targets: [ { url: "${upstream.url}" } ] }
routes:
  - name: keyed
    match: { path: /* }
    upstream: u
`
  const file = writeConfig(t, yaml)
  const gw = await startGateway(yaml, { file })
  t.teardown(() => gw.close())
  t.same(gw.loaded.warnings?.map(w => w.message), ['route "keyed": changed: false,false,false,false'], 'each change refused')
  t.match(gw.loaded.config.plugins, { notes: { say: 'kept' } })
  t.notOk((gw.loaded.config.plugins as Record<string, { anonymous?: string }>)['key-auth']?.anonymous)
  t.same(gw.loaded.config.consumers?.[0]?.credentials?.['key-auth'], { keys: [`sha256:${'1'.repeat(64)}`] })
  t.same(gw.loaded.config.consumers?.[0]?.metadata, { team: { name: 'a' } })
  // What setup ran with: key-auth admits no request without a key.
  const res = await request(`${gw.url}/x`)
  await res.body.dump()
  t.equal(res.statusCode, 401)
})

t.test('definePlugin refuses a warnings that is not a function', async t => {
  const { definePlugin, Type } = await import('../../src/index.ts')
  t.throws(() => definePlugin({ name: 'bad', priority: 1, schema: Type.Object({}), warnings: [] as never, setup: () => ({}) }),
    { message: 'plugin "bad": warnings must be a function' })
})
