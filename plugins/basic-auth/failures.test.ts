import t from 'tap'
import { request } from 'undici'
import { startGateway, type TestGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { until } from '../../test/helpers/wait.ts'
import { hashPassword } from './password-hash.ts'

// Failed password checks are limited per client address: rate-limit (priority 950) runs after the
// auth plugins and never sees a request they refused, so it could not slow password guessing.
// Client addresses come from X-Forwarded-For (trustProxy: the loopback), one per test.

const RIGHT = 'right-password'
// The cheapest cost the format allows: these tests check many passwords.
const HASH = await hashPassword(RIGHT, { ln: 10, r: 1, p: 1 })
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']
const up = await startUpstream()
t.teardown(() => up.close())

const config = (routes: string, stores = '') => `server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: [127.0.0.1]
${stores}consumers:
${USERS.map(u => `  - { id: ${u}, credentials: { basic-auth: { username: ${u}, password: "${HASH}" } } }`).join('\n')}
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${routes}`

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

async function call (gw: TestGateway, path: string, from: string, authorization?: string) {
  const res = await request(`${gw.url}${path}`, { headers: { 'x-forwarded-for': from, ...(authorization === undefined ? {} : { authorization }) } })
  const body = await res.body.json() as { error?: string, message?: string }
  return { status: res.statusCode, headers: res.headers, body }
}
const statuses = async (gw: TestGateway, path: string, from: string, authorizations: string[]) => {
  const out: number[] = []
  for (const a of authorizations) out.push((await call(gw, path, from, a)).status)
  return out
}
const wrong = (n: number, user = 'alice') => Array.from({ length: n }, (_, i) => basic(user, `guess-${i}`))

t.test('in memory', async t => {
  const gw = await startGateway(config(`  - { name: three, match: { path: /three }, upstream: up, plugins: { basic-auth: { failures: { limit: 3, window: 1m } } } }
  - { name: short, match: { path: /short }, upstream: up, plugins: { basic-auth: { failures: { limit: 2, window: 1s } } } }
  - { name: default, match: { path: /default }, upstream: up, plugins: { basic-auth: {} } }
  - { name: off, match: { path: /off }, upstream: up, plugins: { basic-auth: { failures: false } } }
`), { admin: true })
  t.teardown(() => gw.close())
  const failures = (reason: string) => metricValue(gw.adminUrl as string, `portcullis_auth_failures_total{route="three",plugin="basic-auth",reason="${reason}"}`)

  t.test('past the limit: 429 before any check, the same for a right password as for a wrong one', async t => {
    const [checkedBefore, limitedBefore] = [await failures('invalid_password'), await failures('too_many_failures')]
    t.same(await statuses(gw, '/three', '203.0.113.1', wrong(3)), [401, 401, 401])
    const guess = await call(gw, '/three', '203.0.113.1', basic('alice', 'guess-4'))
    const right = await call(gw, '/three', '203.0.113.1', basic('bob', RIGHT))
    for (const [what, r] of [['a wrong password', guess], ['the right one', right]] as const) {
      t.equal(r.status, 429, what)
      t.match(r.body, { error: 'too_many_failures', message: 'too many failed password checks from this address; try again later', requestId: String }, what)
      const retryAfter = Number(r.headers['retry-after'])
      t.ok(retryAfter >= 1 && retryAfter <= 60, `${what}: Retry-After ${retryAfter}, until the window ends`)
      t.equal(r.headers['www-authenticate'], undefined, `${what}: no challenge`)
      t.equal(r.headers['cache-control'], 'no-store', what)
    }
    t.equal(await failures('invalid_password') - checkedBefore, 3, 'only the first three were checked (scrypt)')
    t.equal(await failures('too_many_failures') - limitedBefore, 2, 'the 429s counted by reason')
    t.same([(await call(gw, '/three', '203.0.113.2', basic('bob', RIGHT))).status, (await call(gw, '/three', '203.0.113.2', basic('bob', 'x'))).status], [200, 401],
      'another address is not concerned')
  })

  t.test('a pair that checked out before is refused too, from an address at its limit', async t => {
    t.equal((await call(gw, '/three', '203.0.113.3', basic('carol', RIGHT))).status, 200, 'remembered from now on')
    t.same(await statuses(gw, '/three', '203.0.113.4', [...wrong(3), basic('carol', RIGHT)]), [401, 401, 401, 429])
    t.equal((await call(gw, '/three', '203.0.113.3', basic('carol', RIGHT))).status, 200, 'from its own address')
  })

  t.test('concurrent guesses: no more are checked than the limit', async t => {
    const answers = await Promise.all(wrong(12).map(a => call(gw, '/three', '203.0.113.5', a)))
    t.same(answers.map(a => a.status).sort(), [...Array<number>(3).fill(401), ...Array<number>(9).fill(429)])
  })

  t.test('right passwords checked at once, more than the limit: the excess waits its turn (429), no address is locked out', async t => {
    // Each check holds a failure until it is given back: a burst of right passwords fills the count for a moment.
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => call(gw, '/three', '203.0.113.12', basic(USERS[i % USERS.length] as string, RIGHT))))
    t.ok(burst.every(a => a.status === 200 || a.status === 429), 'right passwords: let in, or refused for now')
    t.ok(burst.some(a => a.status === 200))
    t.same(await statuses(gw, '/three', '203.0.113.12', [basic('grace', RIGHT), basic('alice', RIGHT)]), [200, 200], 'let in once the burst is checked')
    t.same(await statuses(gw, '/three', '203.0.113.12', wrong(4)), [401, 401, 401, 429], 'the whole limit left for failures')
  })

  t.test('a right password neither resets the count nor adds to it', async t => {
    t.same(await statuses(gw, '/three', '203.0.113.6', [...wrong(2), basic('dave', RIGHT), ...wrong(2)]), [401, 401, 200, 401, 429])
  })

  t.test('missing and malformed credentials are not counted', async t => {
    const malformed = [`Basic ${Buffer.from('alice').toString('base64')}`, 'Basic !!!']
    t.same(await statuses(gw, '/three', '203.0.113.7', [...malformed, ...malformed, 'Bearer x', 'Bearer y', basic('erin', RIGHT)]), [401, 401, 401, 401, 401, 401, 200])
  })

  t.test('once the window has passed, the address may try again', async t => {
    t.same(await statuses(gw, '/short', '203.0.113.8', [...wrong(2), basic('frank', RIGHT)]), [401, 401, 429])
    // The window's end is no event to wait for: asked again every 50 ms.
    const start = performance.now()
    let status = 429
    while (status === 429 && performance.now() - start < 3_000) {
      await new Promise(resolve => setTimeout(resolve, 50))
      status = (await call(gw, '/short', '203.0.113.8', basic('frank', RIGHT))).status
    }
    t.equal(status, 200, `let in ${Math.round(performance.now() - start)} ms later (window 1s)`)
    t.same(await statuses(gw, '/short', '203.0.113.8', wrong(3)), [401, 401, 429], 'a new window')
  })

  t.test('on by default, 20 failures a minute per address; failures: false turns it off', async t => {
    t.same(await statuses(gw, '/default', '203.0.113.9', wrong(21)), [...Array<number>(20).fill(401), 429])
    t.same(new Set(await statuses(gw, '/off', '203.0.113.10', wrong(25))), new Set([401]))
  })
})

t.test('in Redis: shared by two gateways; Redis down, passwords are checked as without a limit', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  const yaml = config('  - { name: shared, match: { path: /shared }, upstream: up, plugins: { basic-auth: { failures: { limit: 4, window: 1m, store: shared } } } }\n',
    `stores:\n  shared: { type: redis, url: "${redis.url}", commandTimeout: 2s }\n`)
  const [one, two] = [await startGateway(yaml, { admin: true }), await startGateway(yaml)]
  t.teardown(() => Promise.all([one.close(), two.close()]))

  t.same([...await statuses(one, '/shared', '203.0.113.20', wrong(2)), ...await statuses(two, '/shared', '203.0.113.20', wrong(2))], [401, 401, 401, 401])
  t.equal((await call(one, '/shared', '203.0.113.20', basic('alice', 'guess-5'))).status, 429)
  t.equal((await call(two, '/shared', '203.0.113.20', basic('grace', RIGHT))).status, 429, 'the other gateway: the same count')
  const key = 'pc:basic-auth:failures:60000:203.0.113.20'
  t.equal(await redis.cli('GET', key), '4')
  const ttl = Number(await redis.cli('PTTL', key))
  t.ok(ttl > 0 && ttl <= 60_000, `expires with the window (${ttl} ms left)`)
  t.same(await statuses(one, '/shared', '203.0.113.22', [basic('frank', RIGHT), wrong(1)[0] as string]), [200, 401])
  t.equal(await redis.cli('GET', 'pc:basic-auth:failures:60000:203.0.113.22'), '1', 'the right password\'s failure was given back')

  const errorsBefore = await metricValue(one.adminUrl as string, 'portcullis_store_errors_total{store="shared"}')
  await redis.kill()
  t.ok(await until(() => one.logs.some(l => l.msg === 'store is down: plugins apply their failure rule until it is back')), 'the gateway saw the connection drop')
  t.same(await statuses(one, '/shared', '203.0.113.21', [...wrong(6), basic('grace', RIGHT)]), [401, 401, 401, 401, 401, 401, 200], 'checked, none limited')
  t.ok(await waitForLog(one.logs, { level: 40, store: 'shared', msg: 'basic-auth: store "shared" failed; failed password checks are not counted nor limited while it does (logged at most every 10s)' }),
    'warned, once for all of them')
  t.equal(one.logs.filter(l => typeof l.msg === 'string' && l.msg.startsWith('basic-auth: store')).length, 1)
  t.ok(await metricValue(one.adminUrl as string, 'portcullis_store_errors_total{store="shared"}') > errorsBefore, 'counted as the store\'s errors')
  t.equal((await call(one, '/shared', '203.0.113.20', basic('grace', RIGHT))).status, 429, 'an address the store said is at its limit stays refused until its window ends')
})

t.test('in Redis: a take Redis runs after commandTimeout (Redis stopped) counts nothing: right passwords never lock an address out', async t => {
  const redis = await RedisProcess.start()
  t.teardown(() => redis.stop())
  // commandTimeout 1s: the stopped server times the takes out whatever it is, and the calls outside the stop
  // get room for a loaded machine (one over the default 100 ms counted nothing, or learnt no clock).
  const yaml = config('  - { name: paused, match: { path: /paused }, upstream: up, plugins: { basic-auth: { failures: { limit: 3, window: 1m, store: shared } } } }\n',
    `stores:\n  shared: { type: redis, url: "${redis.url}", commandTimeout: 1s }\n`)
  const gw = await startGateway(yaml, { admin: true })
  t.teardown(() => gw.close())
  const from = '203.0.113.50'
  // Answered in time: the gateway learns where Redis's clock stands, which the takes' deadlines need.
  const sent = performance.now()
  t.equal((await call(gw, '/paused', '203.0.113.51', basic('alice', RIGHT))).status, 200)
  const slowest = performance.now() - sent
  const errors = () => metricValue(gw.adminUrl as string, 'portcullis_store_errors_total{store="shared"}')
  const errorsBefore = await errors()

  // Each user's first login: a real check, its take sent to Redis, which runs it only once the test
  // resumes it (stopped, not CLIENT PAUSE: no time budget for the three takes to arrive).
  const pid = redis.pid as number
  process.kill(pid, 'SIGSTOP')
  let stopped = true
  const resume = () => { if (stopped) { stopped = false; process.kill(pid, 'SIGCONT') } }
  t.teardown(resume)
  const paused = await Promise.all(['bob', 'carol', 'dave'].map(async user => (await call(gw, '/paused', from, basic(user, RIGHT))).status))
  t.same(paused, [200, 200, 200], 'checked as without a limit')
  t.equal(await errors() - errorsBefore, 3, 'each take timed out while Redis was stopped')
  // A take's deadline is its send time plus commandTimeout plus the offset learnt from alice's answer, which
  // its time on the way (under `slowest`) may have made larger: every take is past it once that much more has passed.
  await new Promise(resolve => setTimeout(resolve, Math.ceil(slowest) + 5))
  // The late takes are queued on the gateway's connection, so they have run when its next calls are answered.
  resume()
  t.same(await statuses(gw, '/paused', from, [basic('erin', RIGHT), basic('frank', RIGHT), ...wrong(4)]), [200, 200, 401, 401, 401, 429],
    'the late takes counted nothing: the whole limit is left')
  t.equal(await redis.cli('GET', 'pc:basic-auth:failures:60000:203.0.113.50'), '3', 'only the wrong passwords counted')
  t.match(gw.logs.find(l => typeof l.msg === 'string' && l.msg.startsWith('basic-auth: store')), { level: 40, store: 'shared', failures: 1 }, 'the timeouts logged once')
})
