import t from 'tap'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { startGateway } from '../../test/helpers/gateway.ts'
import { waitForLog } from '../../test/helpers/logs.ts'
import { startUpstream } from '../../test/helpers/upstream.ts'

// Made with `portcullis hash-password --cost 10` from "alice-password".
const ALICE_HASH = '$scrypt$ln=10,r=8,p=1$XasJBFIR0c0WvAIhHno1Dg$S4lyfMpVdZkwv6VhnNzxSrD5XXP2CqzrBjxZU8KoXsI'
const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ALICE_KEY = 'alice-key-0123456789abcdef'
const BOB_KEY = 'bob-key-0123456789abcdef'

const up = await startUpstream()
t.teardown(() => up.close())
const route = (name: string, plugins: string) => `  - { name: ${name}, match: { path: /${name} }, upstream: up, plugins: ${plugins} }`
const gw = await startGateway(`
consumers:
  - { id: alice, groups: [admins], credentials: { key-auth: { keys: [ ${ALICE_KEY} ] }, basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
  - { id: bob, groups: [staff], credentials: { key-auth: { keys: [ ${BOB_KEY} ] } } }
  - { id: guest, groups: [guests] }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
${route('admins-only', '{ key-auth: {}, acl: { allow: { groups: [admins] } } }')}
${route('not-bob', '{ key-auth: {}, acl: { deny: { consumers: [bob] } } }')}
${route('any-of', `{ jwt-auth: { secret: "${SECRET}", forwardClaims: { email: X-User-Email, roles: X-Roles, ids: X-Ids, level: X-Level, verified: X-Verified, org: X-Org, name: X-Name, note: X-Note, tabbed: X-Tabbed } }, key-auth: {}, basic-auth: {} }`)}
${route('guest-either', '{ key-auth: { anonymous: guest }, basic-auth: { anonymous: guest } }')}
${route('anonymous', '{ key-auth: { anonymous: guest }, acl: { allow: { groups: [guests, admins] } } }')}
${route('optional', `{ jwt-auth: { secret: "${SECRET}", optional: true }, acl: { allow: { groups: [admins] } } }`)}
${route('deny-only', `{ jwt-auth: { secret: "${SECRET}", optional: true }, acl: { deny: { consumers: [mallory] } } }`)}
${route('claims-groups', `{ jwt-auth: { secret: "${SECRET}", groupsClaim: roles }, acl: { allow: { groups: [billing] } } }`)}
${route('cased', '{ key-auth: {}, acl: { allow: { groups: [Admins, staff], consumers: [Bob] } } }')}
${route('no-auth-deny', '{ acl: { deny: { consumers: [bob] } } }')}
${route('no-auth-allow', '{ acl: { allow: { groups: [admins] } } }')}
`)
t.teardown(() => gw.close())

async function call (path: string, headers: Record<string, string> = {}) {
  const res = await request(`${gw.url}${path}`, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, json: JSON.parse(text) as { headers: Record<string, string>, error?: string, message?: string, requestId?: string } }
}
const bearer = async (claims: Record<string, unknown>) =>
  `Bearer ${await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))}`
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

t.test('allow by group, deny by id: 403 with a JSON body', async t => {
  t.equal((await call('/admins-only', { 'x-api-key': ALICE_KEY })).status, 200)
  const bob = await call('/admins-only', { 'x-api-key': BOB_KEY })
  t.equal(bob.status, 403)
  t.same({ ...bob.json, requestId: undefined }, { error: 'forbidden', message: 'this consumer may not use this route', requestId: undefined })
  t.equal(bob.headers['www-authenticate'], undefined)
  t.equal((await call('/admins-only')).status, 401, 'authentication comes first')
  t.equal((await call('/not-bob', { 'x-api-key': BOB_KEY })).status, 403)
  t.equal((await call('/not-bob', { 'x-api-key': ALICE_KEY })).status, 200)
  const metric = await gw.metrics.registry.getSingleMetric('portcullis_auth_failures_total')?.get()
  t.same(metric?.values.filter(v => v.labels.plugin === 'acl').map(v => [v.labels.route, v.labels.reason, v.value]),
    [['admins-only', 'denied', 1], ['not-bob', 'denied', 1]])
})

t.test('several auth plugins on a route: any of them; the first credential present decides', async t => {
  const viaKey = await call('/any-of', { 'x-api-key': BOB_KEY, 'x-user-email': 'ceo@example.com' })
  t.equal(viaKey.json.headers['x-consumer-id'], 'bob')
  t.equal(viaKey.json.headers['x-user-email'], undefined, 'a header another member forwards claims in is removed whoever decides')
  const viaBasic = await call('/any-of', { authorization: basic('alice', 'alice-password') })
  t.equal(viaBasic.json.headers['x-consumer-id'], 'alice')
  const viaJwt = await call('/any-of', { authorization: await bearer({ sub: 'carol' }) })
  t.equal(viaJwt.json.headers['x-consumer-id'], 'carol')
  const claims = { roles: ['a', 'b'], ids: [1, 'x'], level: 3, verified: true, org: { id: 7 }, name: 'Zoë', note: 'one\ttwo\nthree', tabbed: 'one\ttwo' }
  const forwarded = (await call('/any-of', { authorization: await bearer({ sub: 'carol', ...claims }) })).json.headers
  t.same([forwarded['x-roles'], forwarded['x-ids'], forwarded['x-level'], forwarded['x-verified'], forwarded['x-org'], forwarded['x-name'], forwarded['x-note'], forwarded['x-tabbed']],
    ['a,b', '[1,"x"]', '3', 'true', '{"id":7}', 'Zo%C3%AB', 'one%09two%0Athree', 'one\ttwo'], 'claims as header values: lists of strings joined, others as JSON; beyond printable ASCII percent-encoded')
  const badTokenGoodKey = await call('/any-of', { authorization: 'Bearer not.a.token', 'x-api-key': BOB_KEY })
  t.equal(badTokenGoodKey.status, 401, 'a bad token is not rescued by a good key: jwt-auth runs first and decides')
  t.equal(badTokenGoodKey.json.error, 'invalid_token')
  const goodKeyBadBasic = await call('/any-of', { 'x-api-key': BOB_KEY, authorization: basic('alice', 'wrong') })
  t.equal(goodKeyBadBasic.status, 200, 'key-auth runs before basic-auth and decides')
  const none = await call('/any-of', { 'x-consumer-id': 'alice' })
  t.equal(none.status, 401)
  t.same(none.headers['www-authenticate'], ['Bearer realm="portcullis"', 'Key realm="portcullis"', 'Basic realm="portcullis", charset="UTF-8"'], 'every scheme offered')
  t.equal(none.json.error, 'unauthorized')
  t.ok(await waitForLog(gw.logs, { requestId: none.json.requestId, reason: 'missing', msg: 'jwt-auth,key-auth,basic-auth: authentication is required' }), 'one log line names every member')
  const metric = await gw.metrics.registry.getSingleMetric('portcullis_auth_failures_total')?.get()
  t.same(metric?.values.filter(v => v.labels.route === 'any-of' && v.labels.reason === 'missing').map(v => [v.labels.plugin, v.value]), [['jwt-auth,key-auth,basic-auth', 1]])
})

t.test('anonymous consumer: requests without a credential pass as it; wrong credentials do not', async t => {
  const r = await call('/anonymous', { 'x-consumer-id': 'alice' })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'guest')
  t.equal(r.json.headers['x-consumer-groups'], 'guests')
  t.equal(r.json.headers['x-anonymous-consumer'], 'true')
  t.equal((await call('/anonymous', { 'x-api-key': 'wrong-key-0123456789' })).status, 401)
  const alice = await call('/anonymous', { 'x-api-key': ALICE_KEY })
  t.equal(alice.json.headers['x-anonymous-consumer'], undefined)
})

t.test('acl without a consumer; groups from a token claim', async t => {
  const r = await call('/optional')
  t.equal(r.status, 403)
  t.equal(r.json.message, 'this route needs an authenticated consumer')
  t.equal(r.json.error, 'forbidden')
  t.equal(r.headers['www-authenticate'], undefined)
  t.ok(await waitForLog(gw.logs, { requestId: r.json.requestId, reason: 'no_consumer', msg: 'acl: this route needs an authenticated consumer' }))
  t.equal((await call('/deny-only')).status, 200, 'without an allow list a request without a consumer passes')
  t.equal((await call('/deny-only', { authorization: await bearer({ sub: 'mallory' }) })).status, 403, 'a consumer id from a token is denied too')
  t.equal((await call('/deny-only', { authorization: await bearer({ sub: 'carol' }) })).status, 200)
  t.ok(gw.logs.find(l => l.level === 40 && l.consumer === 'mallory' && l.msg === 'acl: consumer "mallory" is not under consumers: (it may still come from a token)'), 'an id not under consumers: is warned of at load')
  t.equal((await call('/claims-groups', { authorization: await bearer({ sub: 'dave', roles: ['billing', 'staff'] }) })).status, 200)
  t.equal((await call('/claims-groups', { authorization: await bearer({ sub: 'erin', roles: 'staff' }) })).status, 403)
})

t.test('load warnings: ids and groups no consumer has, or has in another case; no auth plugin on the route', async t => {
  const warned = gw.logs.filter(l => l.level === 40 && l.msg?.toString().startsWith('acl:')).map(l => [l.route, l.msg])
  t.same(warned, [
    ['deny-only', 'acl: consumer "mallory" is not under consumers: (it may still come from a token)'],
    ['claims-groups', 'acl: no consumer under consumers: has group "billing" (it may still come from a token\'s groupsClaim)'],
    ['cased', 'acl: consumer "Bob" is not under consumers:, but "bob" is: ids match case-sensitively'],
    ['cased', 'acl: no consumer under consumers: has group "Admins", but one has "admins": groups match case-sensitively'],
    ['no-auth-deny', 'acl: no auth plugin (jwt-auth, key-auth, basic-auth) on this route sets a consumer: unless a plugin of your own does, every request passes'],
    ['no-auth-allow', 'acl: no auth plugin (jwt-auth, key-auth, basic-auth) on this route sets a consumer: unless a plugin of your own does, every request is refused (no_consumer)']
  ], 'known ids and groups (bob, staff, admins) are not warned of, nor routes with an auth plugin')
  t.equal((await call('/cased', { 'x-api-key': ALICE_KEY })).status, 403, 'Admins is not admins')
})

t.test('acl without an auth plugin: the client\'s identity headers never reach the upstream', async t => {
  const forged = { 'x-consumer-id': 'alice', 'x-consumer-groups': 'admins', x_consumer_id: 'alice', 'x-consumer-username': 'alice', 'x-anonymous-consumer': 'false' }
  const r = await call('/no-auth-deny', forged)
  t.equal(r.status, 200)
  t.same(Object.keys(r.json.headers).filter(h => h.includes('consumer')), [], 'none of them passes')
  const refused = await call('/no-auth-allow', forged)
  t.same([refused.status, refused.json.message], [403, 'this route needs an authenticated consumer'], 'claiming admins in a header is no consumer')
})

t.test('empty allow, deny and lists are config errors', async t => {
  const base = `consumers:\n  - { id: alice }\nupstreams:\n  up: { targets: [ { url: "${up.url}" } ] }\nroutes:\n`
  const at = 'test\\.yaml:\\d+:\\d+ routes\\[0\\]\\.plugins\\.acl'
  for (const [acl, problems] of [
    ['{ allow: {} }', ['\\.allow: an empty allow would refuse every request: remove it, or list the groups or consumers to allow']],
    ['{ deny: {} }', ['\\.deny: an empty deny refuses nobody: remove it, or list the groups or consumers to deny']],
    ['{ deny: { groups: [] } }', ['\\.deny\\.groups: an empty groups list names nobody: remove it, or list the groups to deny']],
    ['{ allow: { groups: [], consumers: [alice] }, deny: { consumers: [] } }', [
      '\\.allow\\.groups: an empty groups list names nobody: remove it, or list the groups to allow',
      '\\.deny\\.consumers: an empty consumers list names nobody: remove it, or list the consumers to deny']]
  ] as const) {
    const err = await startGateway(base + route('r', `{ key-auth: {}, acl: ${acl} }`)).then(() => undefined, (e: unknown) => e as Error)
    for (const p of problems) t.match(err?.message, new RegExp(`^${at}${p}$`, 'm'), acl)
  }
})

t.test('several auth plugins admitting anonymous requests: the same consumer, or a config error', async t => {
  const r = await call('/guest-either', { 'x-consumer-id': 'alice', 'x-anonymous-consumer': 'false' })
  t.equal(r.status, 200)
  t.equal(r.json.headers['x-consumer-id'], 'guest')
  t.equal(r.json.headers['x-consumer-groups'], 'guests')
  t.equal(r.json.headers['x-anonymous-consumer'], 'true')
  const alice = await call('/guest-either', { authorization: basic('alice', 'alice-password') })
  t.same([alice.json.headers['x-consumer-id'], alice.json.headers['x-anonymous-consumer']], ['alice', undefined], 'the second member decides when the first finds nothing')
  const base = `consumers:\n  - { id: guest }\nupstreams:\n  up: { targets: [ { url: "${up.url}" } ] }\nroutes:\n`
  await t.rejects(startGateway(base + route('r', '{ key-auth: { anonymous: nobody } }')),
    { message: /test\.yaml:\d+:\d+ routes\[0\]\.plugins\.key-auth\.anonymous: unknown consumer "nobody"$/m })
  await t.rejects(startGateway(base + route('r', `{ key-auth: { anonymous: guest }, jwt-auth: { secret: "${SECRET}", optional: true } }`)),
    { message: /test\.yaml:8:\d+ routes\[0\]\.plugins\.key-auth\.anonymous: admits requests without credentials as consumer "guest", but jwt-auth on this route admits them as no consumer \(optional\): give the route's auth plugins the same anonymous consumer$/m })
})

t.test('acl runs after an auth plugin at the bottom of the authentication band (1000), whatever its name', async t => {
  const index = JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)
  // Named to sort after "acl": at an equal priority it would run after it.
  const dir = t.testdir({
    'my-auth.ts': `import { definePlugin, Type } from ${index}
export default definePlugin({
  name: 'my-auth',
  priority: 1000,
  schema: Type.Object({}),
  setup (config, ctx) {
    return { onRequest (req) { const user = req.clientHeaders['x-user']; if (typeof user === 'string') req.consumer = ctx.consumers.get(user) } }
  }
})
`
  })
  const custom = await startGateway(`loadPlugins: [ ./my-auth.ts ]
consumers:
  - { id: alice, groups: [admins] }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: r, match: { path: /* }, upstream: up, plugins: { my-auth: {}, acl: { allow: { groups: [admins] } } } }
`, { file: `${dir}/gateway.yaml` })
  t.teardown(() => custom.close())
  const res = await request(`${custom.url}/x`, { headers: { 'x-user': 'alice' } })
  await res.body.dump()
  t.equal(res.statusCode, 200, 'acl sees the consumer my-auth set')
  t.ok(custom.logs.some(l => l.level === 40 && l.msg?.toString().startsWith('acl: no auth plugin (jwt-auth, key-auth, basic-auth) on this route sets a consumer: unless a plugin of your own does')),
    'the gateway cannot tell that my-auth sets consumers: a warning, not an error')
})
