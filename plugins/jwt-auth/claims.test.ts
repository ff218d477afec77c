import t from 'tap'
import { Consumers } from '../../src/consumers/consumers.ts'
import { parseConfig } from '../../src/config/load.ts'
import { compileClaims } from './claims.ts'
import type { JwtAuthConfig } from './schema.ts'

// What a verified token's claims must hold, and the consumer and headers they give, called
// directly (jwt-auth.test.ts sees the same through the gateway). Failures are written out whole.

const consumers = new Consumers([{ id: 'alice', groups: ['staff', 'admins'] }, { id: '42', groups: ['robots'] }])
const admit = (config: Partial<JwtAuthConfig>, claims: Record<string, unknown>, consumerClaim = 'sub') =>
  compileClaims(config as JwtAuthConfig, consumers, consumerClaim)(claims)
const mismatch = (claim: string) => ({ status: 401, reason: 'claim_mismatch', code: 'invalid_token', description: `the token's ${claim} claim is not accepted` })
const NO_SUB = { status: 401, reason: 'no_consumer', code: 'invalid_token', description: 'the token has no sub claim' }
const UNKNOWN = { status: 401, reason: 'unknown_consumer', code: 'invalid_token', description: 'the token names no known consumer' }
/** The consumer admitted, or undefined for a failure. */
const consumerOf = (o: ReturnType<typeof admit>) => 'consumer' in o ? o.consumer : undefined

t.test('required claims: equal to the value or one of the listed ones; an array claim must contain one', async t => {
  const one = { claims: { tenant: 'acme' } }
  t.equal(consumerOf(admit(one, { sub: 'alice', tenant: 'acme' }))?.id, 'alice')
  t.same(admit(one, { sub: 'alice', tenant: 'globex' }), mismatch('tenant'))
  t.same(admit(one, { sub: 'alice' }), mismatch('tenant'), 'a missing claim does not match')
  t.notOk('status' in admit(one, { sub: 'alice', tenant: ['globex', 'acme'] }), 'an array claim containing the value is accepted')
  t.same(admit(one, { sub: 'alice', tenant: ['globex', 'initech'] }), mismatch('tenant'), 'an array claim without it')
  t.same(admit(one, { sub: 'alice', tenant: [] }), mismatch('tenant'), 'an empty array claim')

  const listed = { claims: { tenant: ['acme', 'globex'] } }
  t.notOk('status' in admit(listed, { sub: 'alice', tenant: 'globex' }), 'one of the listed values')
  t.notOk('status' in admit(listed, { sub: 'alice', tenant: ['initech', 'globex'] }), 'an array claim with one of them')
  t.same(admit(listed, { sub: 'alice', tenant: 'initech' }), mismatch('tenant'))

  const typed = { claims: { email_verified: true, level: 3 } }
  t.notOk('status' in admit(typed, { sub: 'alice', email_verified: true, level: 3 }))
  t.same(admit(typed, { sub: 'alice', email_verified: 'true', level: 3 }), mismatch('email_verified'), 'a string is not a boolean')
  t.same(admit(typed, { sub: 'alice', email_verified: true, level: '3' }), mismatch('level'), 'the second claim checked too, and a string is not a number')
  t.same(admit(typed, { sub: 'alice', email_verified: false, level: 4 }), mismatch('email_verified'), 'the first one that fails is named')
})

t.test('claim values as the config gives them after validation: true and 5 stay a boolean and a number, "5" and ${VAR} strings', async t => {
  const loaded = await parseConfig(`server: { listen: { port: 0 } }
upstreams: { up: { targets: [ { url: "http://127.0.0.1:1" } ] } }
routes:
  - name: r
    match: { path: /r }
    upstream: up
    plugins:
      jwt-auth:
        secret: a-shared-secret-of-at-least-32-characters!
        claims: { email_verified: true, level: 5, tier: "5", region: "\${REGION}", any: [false, 2, x] }
`, 'gw.yaml', { REGION: '7' })
  const config = loaded.config.routes[0]?.plugins?.['jwt-auth'] as JwtAuthConfig
  t.same(config.claims, { email_verified: true, level: 5, tier: '5', region: '7', any: [false, 2, 'x'] })
  t.strictSame(Object.values(config.claims ?? {}).flat().map(v => typeof v), ['boolean', 'number', 'string', 'string', 'boolean', 'number', 'string'])
  const claims = { sub: 'alice', email_verified: true, level: 5, tier: '5', region: '7', any: 2 }
  t.notOk('status' in admit(config, claims), 'a token with the same types is accepted')
  t.same(admit(config, { ...claims, email_verified: 'true' }), mismatch('email_verified'), 'a string is not a boolean')
  t.same(admit(config, { ...claims, level: '5' }), mismatch('level'), 'a string is not a number')
  t.same(admit(config, { ...claims, tier: 5 }), mismatch('tier'), 'a quoted number is a string')
  t.same(admit(config, { ...claims, any: 'false' }), mismatch('any'))
})

t.test('scopes: all required, from scope (space-separated or a list) and scp together', async t => {
  const scoped = { scopes: ['read:orders', 'write:orders'] }
  const NEEDED = { status: 403, reason: 'insufficient_scope', code: 'insufficient_scope', description: 'the token lacks a required scope', scope: 'read:orders write:orders' }
  t.notOk('status' in admit(scoped, { sub: 'alice', scope: 'read:orders write:orders' }))
  t.notOk('status' in admit(scoped, { sub: 'alice', scope: ' write:orders  read:orders ' }), 'any order, extra spaces')
  t.notOk('status' in admit(scoped, { sub: 'alice', scope: ['read:orders', 'write:orders', 'profile'] }), 'scope as a list')
  t.notOk('status' in admit(scoped, { sub: 'alice', scp: 'write:orders read:orders' }), 'scp as a string')
  t.notOk('status' in admit(scoped, { sub: 'alice', scope: 'read:orders', scp: ['write:orders'] }), 'one from scope, one from scp')
  t.same(admit(scoped, { sub: 'alice', scope: 'read:orders' }), NEEDED, 'one missing: 403 naming every scope the route needs')
  t.same(admit(scoped, { sub: 'alice', scp: ['write:orders'] }), NEEDED)
  t.same(admit(scoped, { sub: 'alice' }), NEEDED, 'no scope claim at all')
  t.same(admit(scoped, { sub: 'alice', scope: 'read:orderswrite:orders' }), NEEDED, 'words, not substrings')
  t.same(admit(scoped, { sub: 'alice', scope: 'read:orders,write:orders' }), NEEDED, 'space-separated, not comma-separated')
  t.same(admit({ scopes: ['42', 'true'] }, { sub: 'alice', scope: 42, scp: true }), { ...NEEDED, scope: '42 true' }, 'a number or boolean is no scope')
  t.notOk('status' in admit({ scopes: ['read'] }, { sub: 'alice', scope: 'read' }))
  t.same(admit({ scopes: ['read'] }, { sub: 'alice', scope: 'write' }), { ...NEEDED, scope: 'read' })
  t.notOk('status' in admit({}, { sub: 'alice' }), 'no scopes configured: none needed')
  t.same(admit({ scopes: ['read'], claims: { tenant: 'acme' } }, { sub: 'alice', scope: 'write', tenant: 'acme' }), { ...NEEDED, scope: 'read' },
    'scopes checked after the claims that match')
})

t.test('the consumer: a declared one by id, else one made from the claim, unless requireConsumer', async t => {
  const alice = admit({}, { sub: 'alice', groups: ['intruders'] })
  t.equal(consumerOf(alice), consumers.get('alice'), 'the declared consumer itself')
  t.same(consumerOf(admit({}, { sub: 42 })), { id: '42', groups: ['robots'], metadata: {} }, 'a numeric claim names the consumer with that id')

  const made = consumerOf(admit({ groupsClaim: 'roles' }, { sub: 'svc-1', roles: ['billing', 7, 'ops'] }))
  t.same(made, { id: 'svc-1', groups: ['billing', 'ops'], metadata: {} }, 'groups from groupsClaim, strings only')
  t.ok(Object.isFrozen(made) && Object.isFrozen(made?.groups) && Object.isFrozen(made?.metadata), 'frozen, as declared consumers are')
  t.same(consumerOf(admit({ groupsClaim: 'roles' }, { sub: 'svc-1', roles: ' billing  ops' })), { id: 'svc-1', groups: ['billing', 'ops'], metadata: {} }, 'space-separated groups')
  t.same(consumerOf(admit({ groupsClaim: 'roles' }, { sub: 'svc-1', roles: 'billing' })), { id: 'svc-1', groups: ['billing'], metadata: {} })
  t.same(consumerOf(admit({ groupsClaim: 'roles' }, { sub: 'svc-1' })), { id: 'svc-1', groups: [], metadata: {} }, 'no such claim: no groups')
  t.same(consumerOf(admit({ groupsClaim: 'roles' }, { sub: 'svc-1', roles: 7 })), { id: 'svc-1', groups: [], metadata: {} }, 'a number is no group')
  t.same(consumerOf(admit({}, { sub: 'svc-1', roles: ['billing'], groups: ['billing'] })), { id: 'svc-1', groups: [], metadata: {} }, 'no groupsClaim: no groups')
  t.same(consumerOf(admit({}, { sub: 7 })), { id: '7', groups: [], metadata: {} }, 'an undeclared numeric id')

  t.same(admit({ requireConsumer: true }, { sub: 'svc-1' }), UNKNOWN, 'requireConsumer: an undeclared id is refused')
  t.equal(consumerOf(admit({ requireConsumer: true }, { sub: 'alice' })), consumers.get('alice'), 'requireConsumer: a declared one passes')
  t.same(consumerOf(admit({ requireConsumer: false }, { sub: 'svc-1' })), { id: 'svc-1', groups: [], metadata: {} })

  for (const sub of [undefined, '', true, null, ['alice'], { id: 'alice' }]) {
    t.same(admit({}, sub === undefined ? {} : { sub }), NO_SUB, `sub ${JSON.stringify(sub)}: no consumer`)
  }
  t.same(admit({ requireConsumer: true }, { sub: '' }), NO_SUB, 'an empty id is no id, not an unknown one')
  t.same(admit({}, { sub: 'alice', client_id: 'svc-1' }, 'client_id'), { consumer: { id: 'svc-1', groups: [], metadata: {} }, claims: { sub: 'alice', client_id: 'svc-1' }, headers: [] }, 'consumerClaim')
  t.same(admit({}, { sub: 'alice' }, 'client_id'), { ...NO_SUB, description: 'the token has no client_id claim' })
})

t.test('forwarded claims: header names lower-cased, only the claims present, any value', async t => {
  const config = { forwardClaims: { email: 'X-User-Email', verified: 'x-verified', level: 'x-level', roles: 'x-roles', missing: 'x-missing' } }
  const claims = { sub: 'alice', email: 'alice@example.com', verified: false, level: 0, roles: ['a', 'b'] }
  const out = admit(config, claims)
  t.same(out, {
    consumer: consumers.get('alice'),
    claims,
    headers: [['x-user-email', 'alice@example.com'], ['x-verified', 'false'], ['x-level', '0'], ['x-roles', 'a,b']]
  })
  t.equal('claims' in out && out.claims, claims, 'the verified claims themselves, for later plugins')
  t.same(admit({}, { sub: 'alice', email: 'a@example.com' }), { consumer: consumers.get('alice'), claims: { sub: 'alice', email: 'a@example.com' }, headers: [] }, 'nothing forwarded unless configured')
})
