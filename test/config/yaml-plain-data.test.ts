import t from 'tap'
import { request } from 'undici'
import { parseConfig } from '../../src/config/load.ts'
import { issues } from '../helpers/config-issues.ts'
import { runCli, runCliHere } from '../helpers/run-cli.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from '../reload/helpers.ts'

// A config is plain data. What YAML's tags make besides (a Map, a Set, a Date, bytes) was an object
// without keys to the schema: `plugins: !!omap [...]` validated, and the gateway ran with no plugin
// at all (auth off). Nesting thousands of levels deep overflowed the stack: an uncaught RangeError
// ended validate and start, and a reload was answered 500 as a failed build, then retried.

const HEAD = 'server:\n  listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }\n'
const ROUTE = 'routes:\n  - { name: r, match: { path: /* }, upstream: up }\n'
const KEY = 'alice-key-0123456789abcdef'
const CONSUMER = `consumers: [ { id: alice, credentials: { key-auth: { keys: [${KEY}] } } } ]`

t.test('plugins: !!omap is refused at its line by validate, start and reload; the old config keeps serving', async t => {
  const up = await namedUpstream('up')
  const routes = '  - { name: r, match: { path: /* }, upstream: up }'
  const cf = await configFile(gatewayYaml({ up: [up.url] }, routes, `${CONSUMER}\nplugins: { key-auth: {} }`))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([up.close(), cf.remove()]) })
  const status = async (headers: Record<string, string> = {}) => {
    const res = await request(`${gw.url}/x`, { headers })
    await res.body.dump()
    return res.statusCode
  }
  t.equal(await status(), 401, 'key-auth runs')

  await cf.write(gatewayYaml({ up: [up.url] }, routes, `${CONSUMER}\nplugins: !!omap [ { key-auth: {} } ]`))
  const problem = `${cf.file}:6:17 plugins: an ordered map (!!omap) is not plain data: write a plain mapping (key: value)`
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  const answer = await res.body.text()
  t.equal(res.statusCode, 422, 'a config error, not a failed build')
  t.match(answer, '"line":6,"col":17,"path":"plugins","message":"an ordered map (!!omap) is not plain data: write a plain mapping (key: value)"')
  t.equal(await status(), 401, 'the old config, its key-auth, keeps serving')
  t.equal(await status({ 'x-api-key': KEY }), 200)

  const validate = await runCliHere('validate', '-c', cf.file)
  t.equal(validate.code, 1)
  t.match(validate.stderr, problem, 'validate')
  const start = await runCli('start', '-c', cf.file)
  t.equal(start.code, 1)
  t.match(start.stderr, problem, 'start')
})

t.test('what else YAML tags make besides plain data is refused, saying what to write instead', async t => {
  const plugins = (value: string) => `${HEAD}routes:\n  - name: r\n    match: { path: /* }\n    upstream: up\n    plugins: ${value}\n`
  t.same(await issues(t, plugins('!!omap [ { key-auth: {} } ]')), [
    'gw.yaml:9:21 routes[0].plugins: an ordered map (!!omap) is not plain data: write a plain mapping (key: value)'
  ], 'on a route')
  t.same(await issues(t, plugins('!!pairs [ { key-auth: {} } ]')), [
    'gw.yaml:9:22 routes[0].plugins: a list of pairs (!!pairs) is not plain data: write a plain mapping (key: value)'
  ])
  const metadata = (value: string) => `${HEAD}${ROUTE}consumers:\n  - id: alice\n    metadata:\n      ${value}\n`
  t.same(await issues(t, metadata('rate-limit: !!omap [ { limit: 5 } ]')), [
    'gw.yaml:10:26 consumers[0].metadata.rate-limit: an ordered map (!!omap) is not plain data: write a plain mapping (key: value)'
  ], 'a consumer\'s metadata for a plugin')
  t.same(await issues(t, metadata('tags: !!set { a, b }')), [
    'gw.yaml:10:19 consumers[0].metadata.tags: a set (!!set) is not plain data: write a list ([a, b])'
  ])
  t.same(await issues(t, metadata('since: !!timestamp 2025-01-31')), [
    'gw.yaml:10:26 consumers[0].metadata.since: a date (!!timestamp) is not plain data: write it as a quoted string ("2025-01-31")'
  ])
  t.same(await issues(t, metadata('blob: !!binary aGVsbG8=')), [
    'gw.yaml:10:22 consumers[0].metadata.blob: bytes (!!binary) are not plain data: write the base64 text as a string, without the tag'
  ])
  t.same(await issues(t, metadata('? [a, b]\n      : 1')), [
    'gw.yaml:10:9 consumers[0].metadata: a map or a list as a key (? ...) is not plain data: write the key as a string'
  ])
  // Without a tag, the same text is plain data.
  await parseConfig(metadata('since: 2025-01-31\n      blob: aGVsbG8=\n      tags: [a, b]'), 'gw.yaml', {})
})

/** A consumer's metadata nested `levels` deep in all (the top level is one: metadata's own map is the fourth), one space per level. */
const nested = (levels: number): string => {
  let text = `${HEAD}${ROUTE}consumers:\n  - id: alice\n    metadata:\n`
  for (let i = 4; i < levels; i++) text += `${' '.repeat(i + 1)}a${i}:\n`
  return `${text}${' '.repeat(levels + 1)}x: 1\n`
}
const DEEP = 'nested too deeply: maps and lists may nest at most 64 levels'
// The first map past 64 levels: the value of a64, its first key on line 71.
const DEEP_PATH = `consumers[0].metadata${Array.from({ length: 61 }, (_, i) => `.a${i + 4}`).join('')}`
const PAST = `71:67 ${DEEP_PATH}: ${DEEP}`

t.test('maps and lists nested past 64 levels are refused at the first one past it', async t => {
  await parseConfig(nested(64), 'gw.yaml', {})
  t.same(await issues(t, nested(65)), [`gw.yaml:${PAST}`])
  // Where yaml's parser runs out of stack itself (it catches that): the same problem, at level 65.
  const flow = `${HEAD}${ROUTE}consumers: [ { id: alice, metadata: { a: ${'['.repeat(20_000)}${']'.repeat(20_000)} } } ]\n`
  t.same(await issues(t, flow), [`gw.yaml:7:102 consumers[0].metadata.a${'[0]'.repeat(60)}: ${DEEP}`])
  // Aliases nest too: each list holds the one before it.
  let chain = `${HEAD}${ROUTE}consumers:\n  - id: alice\n    metadata:\n      l0: &l0 [1]\n`
  for (let i = 1; i <= 70; i++) chain += `      l${i}: &l${i} [*l${i - 1}]\n`
  t.same(await issues(t, chain), [`gw.yaml:70:18 consumers[0].metadata.l60[0]: the value this alias copies here leaves the config ${DEEP}`])
})

t.test('a config nested 2,000 levels deep (the stack overflowed): validate, start and reload refuse it at its line', async t => {
  const up = await namedUpstream('up')
  const routes = '  - { name: r, match: { path: /* }, upstream: up }'
  const cf = await configFile(gatewayYaml({ up: [up.url] }, routes))
  const gw = await startFromFile(cf.file)
  t.teardown(async () => { await gw.close(); await Promise.all([up.close(), cf.remove()]) })
  // The gateway's own config, with the admin listener: the deep part at the same lines as nested()'s.
  await cf.write(nested(2_000).replace('upstreams:\n  up: { targets: [ { url: "http://127.0.0.1:1" } ] }', `upstreams: { up: { targets: [ { url: "${up.url}" } ] } }\nadmin: { listen: { host: 127.0.0.1, port: 0 } }`))

  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  const answer = await res.body.text()
  t.equal(res.statusCode, 422, 'a config error, not a failed build to retry')
  t.match(answer, `"line":71,"col":67,"path":"${DEEP_PATH}","message":"${DEEP}"`)
  const served = await request(`${gw.url}/x`)
  t.equal(await served.body.text(), 'up', 'the old config keeps serving')

  for (const command of ['validate', 'start']) {
    const run = await runCli(command, '-c', cf.file)
    t.equal(run.code, 1, command)
    t.match(run.stderr, `${cf.file}:${PAST}`, command)
    t.notMatch(run.stderr, 'RangeError', command)
  }
})
