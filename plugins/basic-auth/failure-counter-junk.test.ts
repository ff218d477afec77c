import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { RedisProcess } from '../../test/helpers/redis.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { hashPassword } from './password-hash.ts'

// A failure count in Redis that is not a number (written by something else, corrupt) is a new
// window, as in the memory store: not a script error that leaves the address unlimited for good.
// One without expiry ends within a window: not an address blocked for good.

const redis = await RedisProcess.start()
t.teardown(() => redis.stop())
const up = await startUpstream()
t.teardown(() => up.close())
const hash = await hashPassword('right-password', { ln: 10, r: 1, p: 1 })
const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  trustProxy: [127.0.0.1]
stores:
  shared: { type: redis, url: "${redis.url}", commandTimeout: 2s }
consumers:
  - { id: alice, credentials: { basic-auth: { username: alice, password: "${hash}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /r }, upstream: up, plugins: { basic-auth: { failures: { limit: 3, window: 1h, store: shared } } } }
`)
t.teardown(() => gw.close())
const status = async (from: string, password: string) => {
  const res = await request(`${gw.url}/r`, { headers: { 'x-forwarded-for': from, authorization: `Basic ${Buffer.from(`alice:${password}`).toString('base64')}` } })
  await res.body.dump()
  return res.statusCode
}
const keyOf = (from: string) => `pc:basic-auth:failures:3600000:${from}`
const WINDOW_MS = 3_600_000

t.test('in Redis: a count key holding junk starts a new window; failures are counted and limited again', async t => {
  // One address per value: the gateway remembers an address at its limit for the window.
  for (const [i, junk] of ['junk', '-2', '1.5'].entries()) {
    const from = `203.0.113.${i + 1}`
    const key = keyOf(from)
    await redis.cli('SET', key, junk)
    const statuses = []
    for (let n = 0; n < 4; n++) statuses.push(await status(from, `guess-${n}`))
    t.same(statuses, [401, 401, 401, 429], `over "${junk}": three failures counted, the fourth refused`)
    t.equal(await redis.cli('GET', key), '3', 'the count replaced the junk')
    const ttl = Number(await redis.cli('PTTL', key))
    t.ok(ttl > 0 && ttl <= WINDOW_MS, `expires with the window (${ttl} ms left)`)
  }
})

t.test('in Redis: a count at the limit with no expiry is given the window\'s at the next failure', async t => {
  const from = '203.0.113.10'
  const key = keyOf(from)
  await redis.cli('SET', key, '3')
  t.equal(await redis.cli('PTTL', key), '-1', 'no expiry to begin with')
  t.equal(await status(from, 'guess'), 429, 'still at its limit')
  t.equal(await redis.cli('GET', key), '3', 'nothing counted')
  const ttl = Number(await redis.cli('PTTL', key))
  t.ok(ttl > 0 && ttl <= WINDOW_MS, `expires with the window now (${ttl} ms left)`)
})

t.test('in Redis: a count under the limit with no expiry is counted, and given the window\'s expiry', async t => {
  const from = '203.0.113.11'
  const key = keyOf(from)
  await redis.cli('SET', key, '1')
  t.equal(await status(from, 'guess'), 401)
  t.equal(await redis.cli('GET', key), '2', 'counted')
  const ttl = Number(await redis.cli('PTTL', key))
  t.ok(ttl > 0 && ttl <= WINDOW_MS, `expires with the window now (${ttl} ms left)`)
})
