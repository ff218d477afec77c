import t from 'tap'
import { request } from 'undici'
import { startGateway } from '../../../test/helpers/gateway.ts'
import { startUpstream } from '../../../test/helpers/upstream.ts'

// Made with `portcullis hash-password --cost 10` from "alice-password".
const ALICE_HASH = '$scrypt$ln=10,r=8,p=1$XasJBFIR0c0WvAIhHno1Dg$S4lyfMpVdZkwv6VhnNzxSrD5XXP2CqzrBjxZU8KoXsI'
const ALICE_KEY = 'alice-key-0123456789abcdef'

// `anonymous: alice` naming a consumer with a key admitted every keyless request as alice, silently.
t.test('an anonymous consumer holding credentials: a warning at load, once per consumer; the config still loads', async t => {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`
consumers:
  - { id: alice, groups: [admins], credentials: { key-auth: { keys: [ ${ALICE_KEY} ] }, basic-auth: { username: alice, password: "${ALICE_HASH}" } } }
  - { id: guest }
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: up, plugins: { key-auth: { anonymous: alice }, basic-auth: { anonymous: alice } } }
  - { name: b, match: { path: /b }, upstream: up, plugins: { basic-auth: { anonymous: alice } } }
  - { name: c, match: { path: /c }, upstream: up, plugins: { key-auth: { anonymous: guest } } }
`)
  t.teardown(() => gw.close())
  const warnings = gw.logs.filter(l => typeof l.msg === 'string' && l.msg.includes('admits requests without credentials as consumer'))
  t.equal(warnings.length, 1, 'one line for alice, however many routes and plugins name her; none for guest')
  t.match(warnings[0], {
    level: 40,
    consumer: 'alice',
    route: 'a',
    credentials: ['key-auth', 'basic-auth'],
    msg: 'key-auth: route "a" admits requests without credentials as consumer "alice", which holds key-auth and basic-auth credentials: ' +
      'any client sending none passes as it, with its groups and whatever acl allows it; make a consumer without credentials for anonymous requests'
  })
  const res = await request(`${gw.url}/b`)
  t.equal(res.statusCode, 200, 'a warning, not an error: the route admits as configured')
  await res.body.dump()
})
