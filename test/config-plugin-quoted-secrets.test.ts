import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../src/config/load.ts'
import { formatIssue } from '../src/config/config-error.ts'
import { issues } from './helpers/config-issues.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './reload/helpers.ts'

// A key holding " and \: JSON.stringify writes it escaped, and the escaped text was not looked for.
const SECRET = 'sk_live_ab"cd\\ef123456'
const api = new URL('../src/index.ts', import.meta.url).href
const QUOTER = `import { definePlugin, Type } from '${api}'
export default definePlugin({
  name: 'quoter', priority: 10,
  schema: Type.Object({ apiKey: Type.String(), mode: Type.String() }),
  check (config) { return config.mode === 'check' ? [{ path: ['apiKey'], message: 'key ' + JSON.stringify(config.apiKey) + ' is refused' }] : [] },
  warnings (config) { return config.mode === 'warn' ? ['apiKey ' + config.apiKey + ' looks like a test key', 'or ' + JSON.stringify(config.apiKey)] : [] },
  setup (config) { if (config.mode === 'setup') throw new Error('vendor refused key ' + JSON.stringify(config.apiKey)); return {} }
})
`
const route = (mode: string) => `  - name: r\n    match: { path: /r }\n    upstream: a\n    plugins:\n      quoter: { apiKey: "\${VENDOR_API_KEY}", mode: ${mode} }`
const env = { VENDOR_API_KEY: SECRET }
const escaped = JSON.stringify(SECRET).slice(1, -1)

t.test('a plugin quoting its config\'s secret, JSON-escaped, in a problem, a warning or a setup error shows it hidden', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('ok'), 'loadPlugins: [ ./quoter.mjs ]'))
  writeFileSync(join(cf.dir, 'quoter.mjs'), QUOTER)
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  const file = join(cf.dir, 'gateway.yaml')

  const problems = (await issues(t, gatewayYaml({ a: [a.url] }, route('check'), 'loadPlugins: [ ./quoter.mjs ]'), env, file)).join('\n')
  t.match(problems, 'key "[redacted]" is refused')
  t.notMatch(problems, 'sk_live', 'a check\'s problem')

  const loaded = await parseConfig(gatewayYaml({ a: [a.url] }, route('warn'), 'loadPlugins: [ ./quoter.mjs ]'), file, env)
  const warnings = (loaded.warnings ?? []).map(formatIssue).join('\n')
  t.match(warnings, 'apiKey [redacted] looks like a test key')
  t.match(warnings, 'or "[redacted]"')
  t.notMatch(warnings, 'sk_live', 'a plugin\'s warnings')

  const gw = await startFromFile(cf.file, { env })
  t.teardown(() => gw.close())
  await cf.write(gatewayYaml({ a: [a.url] }, route('setup'), 'loadPlugins: [ ./quoter.mjs ]'))
  const res = await request(`${gw.adminUrl}/config/reload`, { method: 'POST' })
  const answer = await res.body.text()
  t.equal(res.statusCode, 500, answer)
  t.match(answer, 'vendor refused key')
  t.notMatch(answer, 'sk_live', 'a setup error in the reload answer')
  t.notMatch(answer, escaped)
  t.notMatch(JSON.stringify(gw.logs), 'sk_live', 'nor in a log line')
})

// REDIS_PASSWORD=upstream made `routes[0].upstream: unknown upstream "v"` read `routes[0].[redacted]: unknown [redacted] "v"`:
// a path is keys, not searched; a message is, the secret hidden wherever it occurs (a word of the
// message hidden is better than the secret shown where written unquoted or glued to other text).
t.test('a secret that is a word hides wherever a problem says it, never in its path', async t => {
  const store = 'stores:\n  s: { type: redis, url: "redis://127.0.0.1:6379", password: "${REDIS_PASSWORD}" }\n'
  t.same(await issues(t, gatewayYaml({ a: ['http://127.0.0.1:1'] }, '  - { name: r, match: { path: /r }, upstream: v }', store), { REDIS_PASSWORD: 'upstream' }), [
    'gw.yaml:11:47 routes[0].upstream: unknown [redacted] "v" (did you mean "a"?); there are: a'
  ])
  const dir = t.testdir({ 'quoter.mjs': QUOTER })
  const said = await issues(t, gatewayYaml({ a: ['http://127.0.0.1:1'] }, route('check'), 'loadPlugins: [ ./quoter.mjs ]'), { VENDOR_API_KEY: 'upstream' }, join(dir, 'gw.yaml'))
  t.match(said.join('\n'), /routes\[0\]\.plugins\.quoter\.apiKey: key "\[redacted\]" is refused/)
})
