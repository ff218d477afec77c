import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { parseConfig } from '../src/config/load.ts'
import { pluginWarnings } from '../src/plugins/plugin-warnings.ts'
import { formatIssue } from '../src/config/config-error.ts'
import { issues } from './helpers/config-issues.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './reload/helpers.ts'
import { quotingPlugin, quotingRoute } from './helpers/quoting-plugin.ts'
import { runCliHere } from './helpers/run-cli.ts'

// A key holding " and \: JSON.stringify writes it escaped, and the escaped text was not looked for.
const SECRET = 'sk_live_ab"cd\\ef123456'
const QUOTER = quotingPlugin('quoter', `  check (config) { return config.mode === 'check' ? [{ path: ['apiKey'], message: 'key ' + JSON.stringify(config.apiKey) + ' is refused' }] : [] },
  warnings (config) { return config.mode === 'warn' ? ['apiKey ' + config.apiKey + ' looks like a test key', 'or ' + JSON.stringify(config.apiKey)] : [] },
  setup (config) { if (config.mode === 'setup') throw new Error('vendor refused key ' + JSON.stringify(config.apiKey)); return {} }`)
const route = (mode: string) => quotingRoute('quoter', mode)
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

// A plugin's warnings were escaped (`p\u00e4ssw...`) before its config's secrets were looked for in
// them: a secret past ASCII showed, escaped; and one across the 1000-character cut showed up to it.
// explain printed a route's plugin warnings with no secret hidden at all.
const PAST_ASCII = 'Geheimnis-pässwörd-🔑'
const WARNER = quotingPlugin('warner', `  warnings (config) { return ['apiKey ' + config.apiKey + ' looks like a test key', '.'.repeat(990) + config.apiKey] },
  setup () { return {} }`)

t.test('a secret past ASCII a plugin\'s warning quotes is hidden: validate, explain, the start log', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, quotingRoute('warner', 'warn'), 'loadPlugins: [ ./warner.mjs ]'))
  writeFileSync(join(cf.dir, 'warner.mjs'), WARNER)
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  const saved = process.env.VENDOR_API_KEY
  process.env.VENDOR_API_KEY = PAST_ASCII
  t.teardown(() => { if (saved === undefined) delete process.env.VENDOR_API_KEY; else process.env.VENDOR_API_KEY = saved })
  const shown = (text: string, what: string): void => {
    t.match(text, 'route "r": apiKey [redacted] looks like a test key', what)
    t.match(text, `route "r": ${'.'.repeat(990)}[redacted]`, `${what}: a secret across the cut`)
    // Geheimnis: the secret's first word, written or escaped.
    t.notMatch(text, 'Geheim', what)
  }

  const validate = await runCliHere('validate', '-c', cf.file)
  t.equal(validate.code, 0, validate.stderr)
  shown(validate.stderr, 'validate')

  const explain = await runCliHere('explain', '-c', cf.file, 'GET', '/r')
  t.equal(explain.code, 0, explain.stderr)
  t.match(explain.stdout, 'note             apiKey [redacted] looks like a test key')
  t.match(explain.stdout, `note             ${'.'.repeat(990)}[redacted]\n`)
  t.notMatch(explain.stdout, 'Geheim', 'explain\'s notes')

  const gw = await startFromFile(cf.file, { env: { VENDOR_API_KEY: PAST_ASCII } })
  t.teardown(() => gw.close())
  shown(gw.logs.filter(l => l.level === 40).map(l => String(l.msg)).join('\n'), 'the start log')
  t.notMatch(JSON.stringify(gw.logs), 'Geheim', 'nor in any log line')
})

// A message was cut at 1,000 characters and the longest secret's length, then its secrets hidden, then
// cut at 1,000: a secret across the first cut, cut in half, was not found, and the secrets hidden
// before it, each shorter as [redacted], pulled its first half under the second cut: shown.
const ACROSS = 'sk_live_0123456789abcdefghijklmnopqrstuvwxyzABCD'
const STRADDLER = quotingPlugin('straddler', `  warnings (config) {
    const k = config.apiKey
    const across = (start, end) => { let m = start; while (m.length < 1010) m += 'x'; return m + end }
    return [
      across('apiKey ' + k + ' and ' + k + ', ' + k + ', ' + k + ' is a test key; routes sharing it: ', k + ' (again)'),
      across('quoted ' + JSON.stringify(k) + ' ' + JSON.stringify(k) + ' ', JSON.stringify(k)),
      across('apiKey ' + k + ' ' + k + ' ' + k + ' at ', 'https://svc:' + 'P4ss'.repeat(12) + '@vendor.example/')
    ]
  },
  setup () { return {} }`)

t.test('a secret a plugin\'s long warning quotes across its cut is hidden, secrets hidden before it or not', async t => {
  for (const secret of [ACROSS, 'sk_live_"0123456789\\abcdefghijklmnopqrstuvwxyz"ABCD']) {
    const dir = t.testdir({ 'straddler.mjs': STRADDLER })
    const loaded = await parseConfig(gatewayYaml({ a: ['http://127.0.0.1:1'] }, quotingRoute('straddler', 'warn'), 'loadPlugins: [ ./straddler.mjs ]'), join(dir, 'gw.yaml'), { VENDOR_API_KEY: secret })
    const warnings = (loaded.warnings ?? []).map(w => w.message)
    t.equal(warnings.length, 3)
    t.match(warnings[0], /^route "r": apiKey \[redacted\] and \[redacted\], \[redacted\], \[redacted\] is a test key; routes sharing it: x+(\[redacted\])?…$/)
    t.match(warnings[1], /^route "r": quoted "\[redacted\]" "\[redacted\]" x+("\[redacted\])?…$/)
    t.match(warnings[2], /^route "r": apiKey \[redacted\] \[redacted\] \[redacted\] at x+(https:\/\/\[redacted\])?…$/)
    const said = pluginWarnings(loaded.config, loaded.plugins, 0).map(w => w.said).join('\n')
    for (const [text, what] of [[warnings.join('\n'), 'validate, the log'], [said, 'explain']] as const) {
      // The end of each: the secret's first characters, written or quoted, or the URL's user and password.
      t.notMatch(text, /x"?s|svc|P4/, `${what}: ${text.slice(-60)}`)
    }
  }
})
