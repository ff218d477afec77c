import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { hidingValues } from '../src/config/redact.ts'
import { issues } from './helpers/config-issues.ts'
import { configFile, gatewayYaml, namedUpstream, startFromFile } from './reload/helpers.ts'
import { quotingPlugin, quotingRoute } from './helpers/quoting-plugin.ts'

// A secret was hidden only as a token of its own, a letters-only one only where quoted: one glued
// to a %20 escape, after `0x`, `=`, `(` or a JSON `\n`, or written unquoted was shown.
const WORD = 'correcthorsebatterystaple'
const KEY = 'sk9f3kd92kf02kd93'
const VENDOR = quotingPlugin('vendor', `  check (config) {
    if (config.mode === 'check-word') return [{ path: ['apiKey'], message: 'key ' + config.apiKey + ' is a test key' }]
    if (config.mode === 'check-url') return [{ path: ['apiKey'], message: 'cannot reach https://vendor.example/v1/verify?q=Bearer%20' + config.apiKey }]
    return []
  },
  setup (config) {
    if (config.mode === 'setup-word') throw new Error('vendor refused key ' + config.apiKey)
    if (config.mode === 'setup-url') throw new Error('GET https://vendor.example/v1/verify?q=Bearer%20' + config.apiKey + ' answered 401')
    return {}
  }`)
const route = (mode: string) => quotingRoute('vendor', mode)

t.test('a secret is hidden wherever it occurs in a text, inside a longer word too', async t => {
  const cases: Array<[string, string, string]> = [
    [WORD, `key ${WORD} is a test key`, 'key [redacted] is a test key'],
    [WORD, `secret=${WORD}`, 'secret=[redacted]'],
    [WORD, `secret (${WORD})`, 'secret ([redacted])'],
    [WORD, `Bearer ${WORD}`, 'Bearer [redacted]'],
    [WORD, `redis://:${WORD}@h`, 'redis://:[redacted]@h'],
    [KEY, `?q=Bearer%20${KEY}`, '?q=Bearer%20[redacted]'],
    [KEY, `got "\\n${KEY}"`, 'got "\\n[redacted]"'],
    [KEY, `hex 0x${KEY}`, 'hex 0x[redacted]'],
    [KEY, `${KEY}${KEY}`, '[redacted][redacted]']
  ]
  for (const [secret, text, hidden] of cases) t.equal(hidingValues([secret])(text), hidden, text)
  t.equal(hidingValues(['secret-1', 'secret-12'])('x secret-123 y'), 'x [redacted]3 y', 'the longest starting at a place')
})

// After a match the search went on past it: a secret starting inside it (`abcdefgh12` then
// `12ZZSECRETZZ` sharing `12`) showed but for its start: `[redacted]ZZSECRETZZ`.
t.test('secrets overlapping in a text are hidden whole, a run of them as one [redacted]', async t => {
  const hide = hidingValues(['abcdefgh12', '12ZZSECRETZZ', 'ETZZ-tail-secret'])
  t.equal(hide('joined: abcdefgh12ZZSECRETZZ.'), 'joined: [redacted].')
  t.equal(hide('abcdefgh12ZZSECRETZZ-tail-secret!'), '[redacted]!', 'a chain of three')
  t.equal(hide('x 12ZZSECRETZZ abcdefgh12 y'), 'x [redacted] [redacted] y', 'apart, each its own')
  t.equal(hide('abcdefgh12abcdefgh12'), '[redacted][redacted]', 'side by side, each its own')
})

// A text cut from a longer one may end in the start of a secret: hidden too, in every form looked for.
t.test('a cut text ending in the start of a secret hides it', async t => {
  const hide = hidingValues(['sk_live_0123456789', 'pass"word\\123', 'abcdefgh12', '12ZZSECRETZZ'])
  t.equal(hide('key sk_live_01234', true), 'key [redacted]')
  t.equal(hide('key s', true), 'key [redacted]', 'its first character alone')
  t.equal(hide('key sk_live_01234'), 'key sk_live_01234', 'not cut: nothing past the end')
  t.equal(hide('got "pass\\"wo', true), 'got "[redacted]', 'JSON-escaped')
  t.equal(hide('a abcdefgh12ZZSE', true), 'a [redacted]', 'starting inside a secret found whole')
  t.equal(hide('key sk_live_0123456789 and x', true), 'key [redacted] and x', 'no secret starts with the end')
})

// Overlap runs are read at each place: 5,000 keys chained end to start, a text of 100 KB of them.
t.test('overlapping secrets are looked for in time linear in the text', async t => {
  const keys = Array.from({ length: 5000 }, (_, i) => `k${String(i).padStart(5, '0')}-${randomBytes(8).toString('hex')}`)
  // Each key then the next one's start glued on: `k00001-…k00002-` runs into the next key.
  const chained = keys.map(k => k + k.slice(0, 7)).join('')
  const hide = hidingValues([...keys, ...keys.map(k => k.slice(3) + k.slice(0, 7))])
  const started = performance.now()
  const hidden = hide(chained + chained, true)
  t.notMatch(hidden, /[0-9a-f]{16}/, 'no key shows')
  t.ok(performance.now() - started < 2000, `${Math.round(performance.now() - started)} ms`)
})

t.test('a plugin quoting its secret unquoted, glued to other text, shows it hidden: validate, the reload answer, the log', async t => {
  const a = await namedUpstream('a')
  const cf = await configFile(gatewayYaml({ a: [a.url] }, route('ok'), 'loadPlugins: [ ./vendor.mjs ]'))
  writeFileSync(join(cf.dir, 'vendor.mjs'), VENDOR)
  t.teardown(async () => { await Promise.all([a.close(), cf.remove()]) })
  const yaml = (mode: string): string => gatewayYaml({ a: [a.url] }, route(mode), 'loadPlugins: [ ./vendor.mjs ]')

  const word = (await issues(t, yaml('check-word'), { VENDOR_API_KEY: WORD }, cf.file)).join('\n')
  t.match(word, 'apiKey: key [redacted] is a test key')
  t.notMatch(word, WORD)
  const url = (await issues(t, yaml('check-url'), { VENDOR_API_KEY: KEY }, cf.file)).join('\n')
  t.match(url, 'verify?q=Bearer%20[redacted]')
  t.notMatch(url, KEY)

  for (const [mode, secret] of [['setup-word', WORD], ['setup-url', KEY]] as const) {
    await cf.write(yaml('ok'))
    const gw = await startFromFile(cf.file, { env: { VENDOR_API_KEY: secret } })
    try {
      await cf.write(yaml(mode))
      const res = await request(`${gw.adminUrl as string}/config/reload`, { method: 'POST' })
      const answer = await res.body.text()
      t.equal(res.statusCode, 500, answer)
      t.match(answer, mode === 'setup-word' ? 'vendor refused key [redacted]' : 'Bearer%20[redacted] answered 401')
      t.notMatch(answer, secret, `${mode}: not in the reload answer`)
      t.notMatch(JSON.stringify(gw.logs), secret, `${mode}: nor in a log line`)
    } finally { await gw.close() }
  }
})

// 20,000 keys sharing `sk_live_`, each place of a near-miss tried against them one by one: 6-8 s; now ~50 ms.
t.test('secrets sharing a prefix are looked for in time linear in the text', async t => {
  const hide = hidingValues(Array.from({ length: 20_000 }, () => 'sk_live_' + randomBytes(12).toString('hex')))
  const text = Array.from({ length: 5000 }, (_, i) => `consumer c${i}: key sk_live_${randomBytes(12).toString('hex')} is used twice`).join('\n')
  const started = performance.now()
  t.equal(hide(text), text)
  t.ok(performance.now() - started < 2000, `${Math.round(performance.now() - started)} ms`)
})
