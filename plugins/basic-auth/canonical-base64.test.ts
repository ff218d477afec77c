import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// These count the refusals' log lines, which are limited (docs/operations.md#logs).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

// Made once with `printf 'hunter2-secret' | portcullis hash-password`.
const ALICE_HASH = '$scrypt$ln=14,r=8,p=1$J03Ut/f4nNrKywr8ZR/4vg$sYHimJWKkIj7gjhPmwTKNZS3+f1c00b2gwzSUNuXjdg'
const RIGHT = Buffer.from('alice:hunter2-secret').toString('base64')

t.test('base64 other than RFC 4648\'s one spelling of a pair is malformed: not a second counter of a limit by Authorization', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`
consumers:
  - { id: alice, credentials: { basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      basic-auth: { failures: false }
      rate-limit: { by: [ "header:authorization" ], limits: [ { name: one, requests: 1, window: 1h } ] }
`)
  t.teardown(() => gw.close())
  const call = async (credentials: string) => {
    const res = await request(`${gw.url}/r`, { headers: { authorization: `Basic ${credentials}` } })
    return { status: res.statusCode, body: await res.body.json() as { message?: string, requestId?: string } }
  }
  t.equal(RIGHT, 'YWxpY2U6aHVudGVyMi1zZWNyZXQ=')
  t.equal((await call(RIGHT)).status, 200)
  // Each decodes to alice:hunter2-secret with Buffer.from: the last character's 2 unused bits set, padding missing or extra.
  for (const spelling of ['YWxpY2U6aHVudGVyMi1zZWNyZXR=', 'YWxpY2U6aHVudGVyMi1zZWNyZXS=', 'YWxpY2U6aHVudGVyMi1zZWNyZXT=', 'YWxpY2U6aHVudGVyMi1zZWNyZXQ', `${RIGHT}=`, `${RIGHT}==`]) {
    const r = await call(spelling)
    t.equal(r.status, 401, spelling)
    t.equal(r.body.message, 'the Basic credentials are malformed (base64 of user:password)', spelling)
    t.ok(await waitForLog(gw.logs, { requestId: r.body.requestId, reason: 'malformed' }), `${spelling}: logged as malformed`)
  }
  t.equal((await call(RIGHT)).status, 429, 'the one spelling: its counter used up')
})
