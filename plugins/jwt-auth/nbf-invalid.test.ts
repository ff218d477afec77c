import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// A non-numeric nbf is a malformed claim, as a non-numeric exp is: not a token that becomes valid
// later (a client told "not valid yet" would wait and retry it). Real tokens, signed by jose.

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

t.test('an nbf that is not a number is a claim the gateway does not accept, as such an exp is', async t => {
  t.same(await answer(await mint(rsa, { sub: 'alice', nbf: 'x' as unknown as number })), refused('the token\'s nbf claim is not accepted'))
  t.same(await answer(await mint(rsa, { sub: 'alice', exp: 'x' as unknown as number })), refused('the token\'s exp claim is not accepted'))
  const metrics = await gw.metrics.registry.metrics()
  t.match(metrics, /portcullis_auth_failures_total\{[^}]*reason="claim_mismatch"[^}]*\} 2/, 'both counted as claim_mismatch')
  t.notMatch(metrics, /reason="not_yet_valid"/, 'neither as not yet valid')
})

t.test('an nbf in the future is not valid yet; one past is served', async t => {
  t.same(await answer(await mint(rsa, { sub: 'alice', nbf: now + 3600 })), refused('the token is not valid yet'))
  t.equal((await answer(await mint(rsa, { sub: 'alice', nbf: now - 60 }))).status, 200)
})
