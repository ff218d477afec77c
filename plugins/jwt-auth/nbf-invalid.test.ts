import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// A non-numeric nbf, exp or iat makes a malformed token: not one that becomes valid later (a client
// told "not valid yet" would wait and retry it), nor a claim a route asks for. Real tokens, signed by jose.

const rsa = await signingKey('RS256', 'rsa-1')
const up = await startUpstream()
t.teardown(() => up.close())
const gw = await startGateway(`
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: api, match: { path: /api }, upstream: up, plugins: { jwt-auth: { keys: [ ${JSON.stringify(rsa.pem)} ], clockTolerance: 0 } } }
`)
t.teardown(() => gw.close())

const now = Math.floor(Date.now() / 1000)

/** The answer to a request with `token`: status, WWW-Authenticate and the body's message. */
async function answer (token: string) {
  const res = await request(`${gw.url}/api`, { headers: { authorization: `Bearer ${token}` } })
  const body = await res.body.json() as { error?: string, message?: string }
  return { status: res.statusCode, challenge: res.headers['www-authenticate'], message: body.message }
}
const refused = (description: string) => ({
  status: 401,
  challenge: `Bearer realm="portcullis", error="invalid_token", error_description="${description}"`,
  message: description
})

t.test('an nbf, exp or iat that is not a number: a malformed token', async t => {
  for (const claim of ['nbf', 'exp', 'iat']) t.same(await answer(await mint(rsa, { sub: 'alice', [claim]: 'x' })), refused('the token is malformed'), claim)
  const metrics = await gw.metrics.registry.metrics()
  t.match(metrics, /portcullis_auth_failures_total\{[^}]*reason="malformed"[^}]*\} 3/, 'each counted as malformed')
  t.notMatch(metrics, /reason="(not_yet_valid|claim_mismatch|expired)"/, 'none as not yet valid, a claim mismatch or expired')
})

t.test('an nbf in the future is not valid yet; one past is served', async t => {
  t.same(await answer(await mint(rsa, { sub: 'alice', nbf: now + 3600 })), refused('the token is not valid yet'))
  t.equal((await answer(await mint(rsa, { sub: 'alice', nbf: now - 60 }))).status, 200)
})
