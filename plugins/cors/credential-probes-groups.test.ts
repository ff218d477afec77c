import t from 'tap'
import { request } from 'undici'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { startGateway } from '../../test/helpers/gateway.ts'
import { ConfigError } from '../../src/config/config-error.ts'
import { linearSize } from './linear.ts'
import { originProblem, originWarning } from './origins.ts'
import { samples } from './samples.ts'

const P = '^https:\\/\\/'
const entry = (host: string) => `/${P}${host}$/`
const MORE = (origin: string) => `it lets in more than the names it spells out (${origin} matches), which may be anyone's site; write the labels meant (any subdomain: ([a-z0-9-]+\\.)*), or list the origins`
const ANYONE = (origin: string) => `it lets in sites anyone can register (${origin} matches): with credentials: true, any site could read your users' responses: list the origins`

// Text a group or a one-character class requires before the host text: the probes once glued
// throw-away text to the literal runs alone (zzq.mycompany.zz), which such a pattern never matches.
const LOOK_ALIKES: Array<[string, string]> = [
  ['(?:www|shop)\\.mycompany\\.[a-z]{2}', 'https://www.mycompany.zz'],
  ['(?:app)\\.example\\.[a-z]{2}', 'https://app.example.zz'],
  ['(?:app|admin)\\.mycompany\\.[a-z]+', 'https://app.mycompany.zzportcullisprobe'],
  ['(?:app|www)\\.mycompany[a-z0-9-]*\\.com', 'https://app.mycompanyzzq.com'],
  ['my(app)[a-z0-9-]*\\.com', 'https://myappzzq.com'],
  ['myap[p][a-z0-9-]*\\.com', 'https://myappzzq.com'],
  ['(?:www\\.)?mycompany\\.(?:com|[a-z]{2})', 'https://mycompany.zz'],
  ['[a-z]+-myapp\\.herokuapp\\.com', 'https://zzportcullisprobe-myapp.herokuapp.com']
]
// Names anyone can register under .com, the pattern naming none of its own.
const OPEN: Array<[string, string]> = [['[a-z]+\\d\\.com', 'https://zzqa0.com'], ['xn--[a-z0-9-]+\\.com', 'https://xn--azzq.com']]
const SAFE = ['(?:www|shop)\\.mycompany\\.com', '[a-z0-9-]+\\.mycompany\\.com', '(app|admin)\\.mycompany\\.(com|de)', '(?:app|admin)\\.mycompany\\.[a-z]+\\.mycompany\\.com',
  '(?:app|www)[0-9]?\\.mycompany\\.co\\.uk', 'deploy-preview-\\d+--myapp\\.netlify\\.app', '[a-z]{2}\\.example\\.com', 'xn--bcher-kva\\.example', 'myap[p]\\.example\\.com(?::\\d+)?']

t.test('with credentials, a pattern with a group or a one-character class before its host text is refused when it lets in look-alikes', async t => {
  for (const [host, origin] of LOOK_ALIKES) {
    t.equal(originProblem(entry(host), true), MORE(origin), host)
    t.equal(originWarning(entry(host)), MORE(origin), `without credentials, warned of: ${host}`)
  }
  for (const [host, origin] of OPEN) {
    t.equal(originProblem(entry(host), true), ANYONE(origin), host)
    t.equal(originProblem(entry(host), false), undefined, `without credentials, as broad as * is allowed: ${host}`)
    t.equal(originWarning(entry(host)), undefined, 'and not warned of: it spells out no name')
  }
  for (const host of SAFE) {
    t.equal(originProblem(entry(host), true), undefined, `loads with credentials: ${host}`)
    t.equal(originWarning(entry(host)), undefined)
  }
})

t.test('such a pattern with credentials stops the gateway; without, it loads with a warning, and lets in what it warns of', async t => {
  const up = await startUpstream((req, res) => res.end('ok'))
  t.teardown(() => up.close())
  const origins = JSON.stringify([entry(LOOK_ALIKES[0]?.[0] as string)])
  const config = (credentials: boolean) => `
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { cors: { origins: ${origins}, credentials: ${String(credentials)} } } }
`
  const refused = await startGateway(config(true)).then(gw => gw.close(), (err: unknown) => err)
  t.ok(refused instanceof ConfigError, 'not started')
  t.match((refused as ConfigError).message, /routes\[0\]\.plugins\.cors\.origins\[0\]: it lets in more than the names it spells out \(https:\/\/www\.mycompany\.zz matches\)/)

  const gw = await startGateway(config(false))
  t.teardown(() => gw.close())
  t.same(gw.logs.filter(l => String(l.msg).startsWith('cors: origins')).map(l => l.msg),
    [`cors: origins[0] ${entry(LOOK_ALIKES[0]?.[0] as string)}: ${MORE('https://www.mycompany.zz')}`])
  const res = await request(`${gw.url}/`, { method: 'OPTIONS', headers: { origin: 'https://www.mycompany.ru', 'access-control-request-method': 'PUT' } })
  await res.body.dump()
  t.equal(res.statusCode, 204)
  t.equal(res.headers['access-control-allow-origin'], 'https://www.mycompany.ru', 'a site anyone can register under .ru')
})

t.test('samples keep counts and take each alternative and optional part', async t => {
  t.same(samples(`${P}(?:www|shop)\\.mycompany\\.[a-z]{2}(?::\\d+)?$`, '', 64).map(s => [s.text, s.open]), [
    ['https://www.mycompany.aa', '000000000000000000000011'],
    ['https://shop.mycompany.aa', '0000000000000000000000011'],
    ['https://www.mycompany.aa:0', '00000000000000000000001101']
  ])
  t.same(samples(`${P}(?!x)a{0}b{2,3}\\bc?$`, '', 64).map(s => s.text), ['https://bb', 'https://bbc'], 'lookarounds and assertions read nothing')
  t.equal(samples(`${P}(?:a|b|c)(?:a|b|c)(?:a|b|c)$`, '', 4).length, 4, 'at most as many as asked')
})

t.test('the sample probes\' work at load is bounded: a pattern with many open parts in its last labels', async t => {
  const source = `${P}(?:${Array.from({ length: 60 }, (_, i) => `x${i}`).join('|')})\\.${'a[a-c]'.repeat(20)}\\.${'b[a-c]'.repeat(20)}$`
  const test = RegExp.prototype.test
  let characters = 0
  // The origins made from samples (x0.aaaa...): the other probes try short names.
  RegExp.prototype.test = function (this: RegExp, s: string) { if (this.source.includes('x59') && s.includes('aaaa')) characters += s.length; return test.call(this, s) }
  t.teardown(() => { RegExp.prototype.test = test })
  t.equal(originProblem(`/${source}/`, true), undefined)
  RegExp.prototype.test = test
  // Unbounded: 1,761,600 characters.
  t.ok(characters > 0 && characters <= 30_000_000 / linearSize(source, ''), `${characters} characters`)
})
