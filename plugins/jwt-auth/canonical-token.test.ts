import t from 'tap'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// These count the refusals' log lines, which are limited (docs/operations.md#logs).
process.env.PORTCULLIS_LOG_LIMIT_MS = '0'

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

t.test('a token whose base64url is not RFC 7515\'s one spelling is malformed: not a second counter of a limit by Authorization', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      jwt-auth: { secret: "${SECRET}" }
      rate-limit: { by: [ "header:authorization" ], limits: [ { name: one, requests: 1, window: 1h } ] }
`)
  t.teardown(() => gw.close())
  const call = async (token: string) => {
    const res = await request(`${gw.url}/r`, { headers: { authorization: `Bearer ${token}` } })
    return { status: res.statusCode, body: await res.body.json() as { message?: string, requestId?: string } }
  }
  const token = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))
  // An HS256 signature is 32 bytes: 43 characters, the last one's 2 low bits unused.
  const signature = token.slice(token.lastIndexOf('.') + 1)
  t.equal(signature.length, 43)
  const last = ALPHABET.indexOf(signature.slice(-1))
  t.equal(last % 4, 0, 'the signer leaves them zero')
  t.equal((await call(token)).status, 200)
  const head = token.slice(0, -1)
  const spellings = [
    ...[1, 2, 3].map(bits => head + (ALPHABET[last + bits] as string)),
    `${token}=`,
    // atob drops white space inside a segment.
    `${token.slice(0, -5)} ${token.slice(-5)}`
  ]
  for (const spelling of spellings) {
    const r = await call(spelling)
    t.equal(r.status, 401, spelling.slice(-8))
    t.equal(r.body.message, 'the token is malformed', spelling.slice(-8))
    t.ok(await waitForLog(gw.logs, { requestId: r.body.requestId, reason: 'malformed' }), `${spelling.slice(-8)}: logged as malformed`)
  }
  t.equal((await call(token)).status, 429, 'the one spelling: its counter used up')
})
