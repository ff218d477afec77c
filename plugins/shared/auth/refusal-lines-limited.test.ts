import t from 'tap'
import { randomBytes } from 'node:crypto'
import { request } from 'undici'
import { startGateway } from '../../../test/helpers/gateway.ts'
import { startUpstream } from '../../../test/helpers/upstream.ts'
import { until } from '../../../test/helpers/wait.ts'

// A window short enough to see its summary (read as each limiter is made).
process.env.PORTCULLIS_LOG_LIMIT_MS = '1000'

// Any client can be refused at will: 3,333 random API keys wrote 3,333 "key-auth: the API key is
// not valid" lines beside the access lines. Now a few per route, plugin and reason in each window.
t.test('auth refusals: one line per route, plugin and reason in a window, then a summary', async t => {
  const up = await startUpstream()
  const gw = await startGateway(`upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: keys, match: { path: /keys }, upstream: up, plugins: { key-auth: {} } }
  - { name: more-keys, match: { path: /more-keys }, upstream: up, plugins: { key-auth: {} } }
  - { name: basic, match: { path: /basic }, upstream: up, plugins: { basic-auth: {} } }
  - { name: jwt, match: { path: /jwt }, upstream: up, plugins: { jwt-auth: { secret: "${'s'.repeat(32)}" } } }
`)
  t.teardown(async () => { await gw.close(); await up.close() })
  const call = async (path: string, headers: Record<string, string>) => {
    const res = await request(`${gw.url}${path}`, { headers })
    await res.body.dump()
    return res.statusCode
  }
  const N = 200
  const start = performance.now()
  const statuses = await Promise.all(Array.from({ length: N }, () => call('/keys', { 'x-api-key': randomBytes(12).toString('hex') })))
  t.same(new Set(statuses), new Set([401]), 'every one refused')
  for (let i = 0; i < 20; i++) await call('/keys', {}) // another reason: missing
  await call('/more-keys', { 'x-api-key': 'nope' }) // another route
  for (let i = 0; i < 20; i++) await call('/basic', { authorization: 'Basic !!!' })
  for (let i = 0; i < 20; i++) await call('/jwt', { authorization: 'Bearer not.a.token' })
  // One line per window: more only on a machine so loaded that the requests outlast one (1 s).
  const most = 1 + Math.floor((performance.now() - start) / 1000)
  t.ok(await until(() => gw.logs.filter(l => l.msg === 'request').length === N + 61), 'every access line')

  const lines = (msg: string, route: string) => gw.logs.filter(l => l.msg === msg && l.route === route)
  const invalid = 'key-auth: the API key is not valid'
  const logged = lines(invalid, 'keys')
  t.ok(logged.length >= 1 && logged.length <= most, `${logged.length} line(s) for ${N} refusals`)
  t.match(logged[0], { plugin: 'key-auth', reason: 'invalid_key', status: 401, requestId: String })
  t.equal(lines(invalid, 'more-keys').length, 1, 'another route has its own')
  for (const [msg, route] of [['key-auth: authentication is required', 'keys'], ['basic-auth: the Basic credentials are malformed (base64 of user:password)', 'basic'], ['jwt-auth: the token is malformed', 'jwt']] as const) {
    const n = lines(msg, route).length
    t.ok(n >= 1 && n <= most, `${route}: ${msg}: ${n} line(s) for 20`)
  }

  // The rest are counted in summaries (at the same level, with the route, plugin and reason) once the window ends.
  const summaries = () => gw.logs.filter(l => l.route === 'keys' && typeof l.msg === 'string' && l.msg.endsWith(` more like "${invalid}" in the last 1 s`))
  const counted = () => summaries().reduce((sum, l) => sum + (l.suppressed as number), 0)
  t.ok(await until(() => logged.length + counted() === N), 'every refusal logged or counted')
  t.match(summaries()[0], { level: 30, plugin: 'key-auth', reason: 'invalid_key', status: 401, suppressed: Number })
})
