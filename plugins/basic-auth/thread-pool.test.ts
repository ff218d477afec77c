import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'
import { metricValue } from '../../test/helpers/metric-value.ts'

// scrypt runs on libuv's thread pool, as zlib does: a flood of wrong passwords once took every
// thread, and compressed responses of every route waited behind all of it.
const HASH = '$scrypt$ln=14,r=8,p=1$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg' // hunter2-secret
const BODY = JSON.stringify({ items: Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item ${i}` })) })
const up = await startUpstream((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(BODY) })
t.teardown(() => up.close())
const gw = await startGateway(`
consumers:
  - { id: alice, credentials: { basic-auth: { username: alice, password: "${HASH}" } } }
  - { id: dave, credentials: { basic-auth: { username: dave, password: "${HASH}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  # Floods as from many addresses: from one, all but the first 20 would get 429 (failures.test.ts).
  - { name: basic, match: { path: /basic }, upstream: up, plugins: { basic-auth: { failures: false } } }
  - { name: zipped, match: { path: /zipped }, upstream: up, plugins: { compress: { encodings: [gzip] } } }
`, { admin: true })
t.teardown(() => gw.close())

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

/** `n` requests with wrong passwords at once; `answered` counts those answered so far. */
function flood (n: number) {
  const state = { answered: 0, statuses: [] as number[], busy: [] as Array<{ retryAfter: unknown, body: unknown }> }
  const done = Promise.all(Array.from({ length: n }, async (_, i) => {
    const res = await request(`${gw.url}/basic`, { headers: { authorization: basic('alice', `wrong-${i}`) } })
    const body = await res.body.json()
    state.statuses.push(res.statusCode)
    if (res.statusCode === 503) state.busy.push({ retryAfter: res.headers['retry-after'], body })
    state.answered++
  }))
  return { state, done }
}

t.test('a flood of wrong passwords takes at most half the thread pool: a compressed response elsewhere is not held behind it', async t => {
  // 66 = the 2 checks under way and the 64 that may wait: all are checked, none refused.
  const { state, done } = flood(66)
  const res = await request(`${gw.url}/zipped`, { headers: { 'accept-encoding': 'gzip' } })
  await res.body.arrayBuffer()
  const answeredMeanwhile = state.answered
  await done
  t.equal(res.headers['content-encoding'], 'gzip')
  t.ok(answeredMeanwhile < 10, `the compressed response came after ${answeredMeanwhile} of 66 password checks, not after all of them`)
  t.same(new Set(state.statuses), new Set([401]), 'every one checked')
})

t.test('past the checks that may wait: 503 auth_busy with Retry-After, without a check, counted', async t => {
  const before = await metricValue(gw.adminUrl as string, 'portcullis_auth_failures_total{route="basic",plugin="basic-auth",reason="busy"}')
  const { state, done } = flood(300)
  await done
  t.ok(state.busy.length > 0 && state.busy.length < 300, `${state.busy.length} of 300 refused`)
  t.match(state.busy[0], { retryAfter: '5', body: { error: 'auth_busy', message: 'too many password checks are waiting; try again shortly' } })
  t.equal(await metricValue(gw.adminUrl as string, 'portcullis_auth_failures_total{route="basic",plugin="basic-auth",reason="busy"}'), before + state.busy.length)
})

t.test('clients that leave while their checks wait for a turn: the turns pass on, no password checked for nobody', async t => {
  const failures = (reason: string) => metricValue(gw.adminUrl as string, `portcullis_auth_failures_total{route="basic",plugin="basic-auth",reason="${reason}"}`)
  const [endedBefore, invalidBefore] = [await failures('request_ended'), await failures('invalid_password')]
  const leaving = new AbortController()
  const n = 40
  const sent = Array.from({ length: n }, (_, i) =>
    request(`${gw.url}/basic`, { headers: { authorization: basic('alice', `leaving-${i}`) }, signal: leaving.signal }).then(() => 'answered', () => 'left'))
  // All of them in the gateway (2 being checked, the rest waiting), then every client leaves.
  for (let i = 0; i < 500 && await metricValue(gw.adminUrl as string, 'portcullis_http_requests_in_flight') < n; i++) await new Promise(resolve => setTimeout(resolve, 5))
  leaving.abort()
  t.same(new Set(await Promise.all(sent)), new Set(['left']))
  // Right after them in line: a client that stays is checked as soon as the checks under way end.
  t.equal((await request(`${gw.url}/basic`, { headers: { authorization: basic('dave', 'hunter2-secret') } })).statusCode, 200)
  // The other check under way when dave's began may still be running: wait for its count.
  let ended = 0
  let checked = 0
  for (let i = 0; i < 200 && ended + checked < n; i++) {
    if (i > 0) await new Promise(resolve => setTimeout(resolve, 10))
    ended = await failures('request_ended') - endedBefore
    checked = await failures('invalid_password') - invalidBefore
  }
  t.equal(ended + checked, n, 'each departed request counted once')
  t.ok(ended >= n / 2, `${ended} of ${n} skipped (checked before they left: ${checked})`)
})
