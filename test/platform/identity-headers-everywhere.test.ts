import t, { type Test } from 'tap'
import { once } from 'node:events'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { SignJWT } from 'jose'
import { request } from 'undici'
import { WebSocket, WebSocketServer } from 'ws'
import { definePlugin, Type } from '../../src/index.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { echoed, h2Connect, h2Request } from '../helpers/http2.ts'
import { startUpstream } from '../helpers/upstream.ts'

const SECRET = 'a-shared-secret-of-at-least-32-characters!'

/** What a client forges: identity headers and the claim headers jwt-auth vouches for (top-level x-user-email, a route's x-team), both spellings. */
const FORGED = {
  'x-consumer-id': 'alice',
  'x-consumer-groups': 'admins',
  'x-consumer-username': 'alice',
  x_consumer_id: 'alice',
  'x-anonymous-consumer': 'false',
  x_anonymous_consumer: 'false',
  'x-user-email': 'ceo@corp.example',
  x_user_email: 'ceo@corp.example',
  'x_user-email': 'ceo@corp.example',
  'x-team': 'finance',
  x_team: 'finance'
}
const FORGED_NAMES = Object.keys(FORGED)
/** Looks like them, but neither an identity header nor vouched for: passed on. */
const KEPT = { 'x-consumers': 'kept', 'x-user-emails': 'kept', 'x-trace-note': 'kept' }

const forgedIn = (headers: IncomingHttpHeaders | Record<string, string>): string[] => FORGED_NAMES.filter(name => headers[name] !== undefined)
const kept = (headers: IncomingHttpHeaders | Record<string, string>) => Object.fromEntries(Object.keys(KEPT).map(name => [name, headers[name]]))

/** A ws server that accepts every upgrade and keeps its request headers. */
async function wsUpstream (t: Test): Promise<{ url: string, upgrades: IncomingHttpHeaders[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  const upgrades: IncomingHttpHeaders[] = []
  wss.on('connection', (_ws, req: IncomingMessage) => { upgrades.push(req.headers) })
  await once(wss, 'listening')
  t.teardown(() => new Promise(resolve => { for (const c of wss.clients) c.terminate(); wss.close(resolve) }))
  return { url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`, upgrades }
}

/** The identity headers among FORGED: removed whatever plugins the config has. */
const IDENTITY_NAMES = FORGED_NAMES.filter(name => /^x[-_](consumer|anonymous)/.test(name))

/** `routes` for both upstreams: /<name> to the echo, /ws-<name> to the ws server. */
async function gateway (t: Test, server: string, plugins: string, routes: Record<string, string>): Promise<{ gw: TestGateway, ws: { upgrades: IncomingHttpHeaders[] } }> {
  const up = await startUpstream()
  t.teardown(() => up.close())
  const ws = await wsUpstream(t)
  const listed = Object.entries(routes).flatMap(([name, rest]) => [
    `  - { name: ${name}, match: { path: /${name} }, upstream: up${rest} }`,
    `  - { name: ws-${name}, match: { path: /ws-${name} }, upstream: ws${rest} }`
  ]).join('\n')
  const gw = await startGateway(`server:
  listen: { host: 127.0.0.1, port: 0 }
  http2: { h2c: { listen: { host: 127.0.0.1, port: 0 } } }
${server}
consumers: [ { id: bob, groups: [staff], credentials: { key-auth: { keys: [ bob-key-0123456789abcdef ] } } } ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
  ws: { targets: [ { url: "${ws.url}" } ] }
${plugins}
routes:
${listed}
`)
  t.teardown(() => gw.close())
  return { gw, ws }
}

const token = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(Buffer.from(SECRET))

/** The headers the upstream got for a request with FORGED and KEPT (and `extra`), over HTTP/1.1. */
async function sent (t: Test, gw: TestGateway, path: string, extra: Record<string, string> = {}): Promise<IncomingHttpHeaders> {
  const res = await request(`${gw.url}${path}`, { headers: { ...FORGED, ...KEPT, ...extra } })
  t.equal(res.statusCode, 200, `${path} answered`)
  return (await res.body.json() as { headers: IncomingHttpHeaders }).headers
}

/** The headers the ws upstream got for an upgrade with FORGED and KEPT (and `extra`). */
async function upgraded (t: Test, gw: TestGateway, ws: { upgrades: IncomingHttpHeaders[] }, path: string, extra: Record<string, string> = {}): Promise<IncomingHttpHeaders> {
  const client = new WebSocket(`${gw.url.replace('http', 'ws')}${path}`, { headers: { ...FORGED, ...KEPT, ...extra } })
  t.teardown(() => client.terminate())
  // The ws server keeps the headers before it writes the 101 the client opens on.
  await once(client, 'open')
  client.close()
  return ws.upgrades.at(-1) as IncomingHttpHeaders
}

const BOB_KEY = { 'x-api-key': 'bob-key-0123456789abcdef' }
const without = (names: string[], gone: string[]) => names.filter(n => !gone.includes(n))

// The default (no trusted proxy) and a trusted peer: the gateway's headers are its own either way.
for (const [peer, server] of [['an untrusted peer', ''], ['a trusted proxy', '  trustProxy: true']] as const) {
  t.test(`from ${peer}: routes without auth get none of a client's identity or vouched headers, auth routes only the verified ones`, async t => {
    const { gw, ws } = await gateway(t, server, `plugins:
  jwt-auth: { secret: "${SECRET}", forwardClaims: { email: x-user-email } }`, {
      off: ', plugins: { jwt-auth: false }',
      team: `, plugins: { jwt-auth: { secret: "${SECRET}", forwardClaims: { team: x-team } } }`,
      key: ', plugins: { jwt-auth: false, key-auth: {} }',
      auth: ''
    })
    const off = await sent(t, gw, '/off')
    t.same(forgedIn(off), [], 'top-level jwt-auth turned off: none arrives (its forwardClaims, another route\'s, identity headers)')
    t.same(kept(off), KEPT, 'look-alike headers pass')
    const key = await sent(t, gw, '/key', BOB_KEY)
    t.same([key['x-consumer-id'], key['x-consumer-groups']], ['bob', 'staff'], 'key-auth: the verified consumer\'s headers arrive')
    t.same(without(forgedIn(key), ['x-consumer-id', 'x-consumer-groups']), [], 'and none of the client\'s others')

    const bearer = `Bearer ${await token({ sub: 'carol', email: 'carol@example.com', team: 'ops' })}`
    const auth = await sent(t, gw, '/auth', { authorization: bearer })
    t.same([auth['x-consumer-id'], auth['x-user-email'], auth['x-team']], ['carol', 'carol@example.com', undefined], 'top-level jwt-auth: the verified claims arrive')
    t.same(without(forgedIn(auth), ['x-consumer-id', 'x-user-email']), [], 'and none of the client\'s others')
    const team = await sent(t, gw, '/team', { authorization: bearer })
    t.same([team['x-consumer-id'], team['x-team'], team['x-user-email']], ['carol', 'ops', undefined], 'a route\'s jwt-auth: its own claims arrive')

    // HTTP/2 (h2c): the same entry, its own header parsing.
    const session = await h2Connect(gw.h2cUrl as string)
    t.teardown(() => session.destroy())
    const h2 = await h2Request(session, { ':path': '/off', ...FORGED, ...KEPT })
    t.equal(h2.status, 200)
    t.same([forgedIn(echoed(h2).headers), kept(echoed(h2).headers)], [[], KEPT], 'HTTP/2, jwt-auth turned off: none arrives, look-alikes pass')
    const h2Auth = echoed(await h2Request(session, { ':path': '/auth', authorization: bearer, ...FORGED }))
    t.same([h2Auth.headers['x-consumer-id'], h2Auth.headers['x-user-email']], ['carol', 'carol@example.com'], 'HTTP/2: the verified claims arrive')

    // WebSocket upgrades: their own entry into the same routing.
    const wsOff = await upgraded(t, gw, ws, '/ws-off')
    t.same([forgedIn(wsOff), kept(wsOff)], [[], KEPT], 'upgrade, jwt-auth turned off: none arrives, look-alikes pass')
    const wsKey = await upgraded(t, gw, ws, '/ws-key', BOB_KEY)
    t.same([wsKey['x-consumer-id'], wsKey['x-consumer-groups']], ['bob', 'staff'], 'upgrade with key-auth: the consumer\'s headers arrive')
    t.same(without(forgedIn(wsKey), ['x-consumer-id', 'x-consumer-groups']), [], 'and none of the client\'s others')
  })
}

t.test('a config without any auth plugin: the identity headers are removed all the same, other names pass', async t => {
  const { gw, ws } = await gateway(t, '', '', { open: '' })
  const open = await sent(t, gw, '/open')
  t.same(forgedIn(open), without(FORGED_NAMES, IDENTITY_NAMES), 'HTTP/1.1: no identity header; no plugin vouches for the others here')
  const session = await h2Connect(gw.h2cUrl as string)
  t.teardown(() => session.destroy())
  t.same(forgedIn(echoed(await h2Request(session, { ':path': '/open', ...FORGED })).headers), without(FORGED_NAMES, IDENTITY_NAMES), 'HTTP/2 likewise')
  t.same(forgedIn(await upgraded(t, gw, ws, '/ws-open')), without(FORGED_NAMES, IDENTITY_NAMES), 'an upgrade likewise')
})

t.test('a plugin of the user\'s declares vouchedHeaders: removed on every route, its own value set after', async t => {
  const dir = t.testdir({
    'stamp.ts': `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({
  name: 'stamp',
  priority: 1300,
  schema: Type.Object({ header: Type.String() }),
  vouchedHeaders: config => [config.header],
  setup (config) { return { onRequest (req) { req.headers['x-stamp-saw'] = String(req.headers[config.header.toLowerCase()]); req.headers[config.header.toLowerCase()] = 'gateway' } } }
})
`
  })
  const up = await startUpstream()
  t.teardown(() => up.close())
  const gw = await startGateway(`loadPlugins: [ ./stamp.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - { name: stamped, match: { path: /stamped }, upstream: up, plugins: { stamp: { header: X-Tenant } } }
  - { name: plain, match: { path: /plain }, upstream: up }
`, { file: `${dir}/gateway.yaml` })
  t.teardown(() => gw.close())
  const headers = async (path: string) =>
    (await (await request(`${gw.url}${path}`, { headers: { 'x-tenant': 'evil', x_tenant: 'evil' } })).body.json() as { headers: IncomingHttpHeaders }).headers
  const stamped = await headers('/stamped')
  t.same([stamped['x-stamp-saw'], stamped['x-tenant'], stamped.x_tenant], ['undefined', 'gateway', undefined], 'its hook never sees the client\'s, the upstream gets its own')
  const plain = await headers('/plain')
  t.same([plain['x-tenant'], plain.x_tenant], [undefined, undefined], 'a route without it: removed too')
})

t.test('vouchedHeaders must be a function', t => {
  t.throws(() => definePlugin({ name: 'bad', priority: 1, schema: Type.Object({}), vouchedHeaders: ['x-a'] as never, setup: () => ({}) }),
    { message: 'plugin "bad": vouchedHeaders must be a function' })
  t.end()
})

/** A plugin of the user's in `dir`: `tenant`, whose `header` is x-tenant unless given, vouched for as `vouched` (its source) says. */
const tenantPlugin = (vouched: string, header = "Type.Optional(Type.String({ default: 'x-tenant' }))") => ({
  'tenant.ts': `import { definePlugin, Type } from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).href)}
export default definePlugin({
  name: 'tenant',
  priority: 1300,
  schema: Type.Object({ header: ${header}, returns: Type.Optional(Type.String()) }),
  vouchedHeaders: ${vouched},
  setup: () => ({})
})
`
})

for (const written of ['tenant:', 'tenant: {}']) {
  t.test(`vouchedHeaders gets the config as validated, defaults applied: a route's "${written}" vouches for the default header`, async t => {
    const dir = t.testdir(tenantPlugin('c => c.header === undefined ? [] : [c.header]'))
    const up = await startUpstream()
    t.teardown(() => up.close())
    const gw = await startGateway(`loadPlugins: [ ./tenant.ts ]
upstreams:
  up: { targets: [ { url: "${up.url}" } ] }
routes:
  - name: tenanted
    match: { path: /tenanted }
    upstream: up
    plugins:
      ${written}
  - { name: plain, match: { path: /plain }, upstream: up }
`, { file: `${dir}/gateway.yaml` })
    t.teardown(() => gw.close())
    for (const path of ['/tenanted', '/plain']) {
      const res = await request(`${gw.url}${path}`, { headers: { 'x-tenant': 'forged', x_tenant: 'forged' } })
      const { headers } = await res.body.json() as { headers: IncomingHttpHeaders }
      t.same([headers['x-tenant'], headers.x_tenant], [undefined, undefined], `${path}: the client's x-tenant is removed`)
    }
  })
}

t.test('vouchedHeaders that throws or returns anything but an array of header names: a config problem at the plugin\'s key', async t => {
  const dir = t.testdir(tenantPlugin(`c => {
    switch (c.returns) {
      case 'string': return 'x-tenant'
      case 'number': return ['x-a', 5]
      case 'space': return ['x tenant']
      case 'throw': throw new Error('no tenant')
      default: return [c.header]
    }
  }`, 'Type.Optional(Type.String())'))
  const cases: Array<[string, string]> = [
    ['{ returns: string }', 'vouchedHeaders must return an array of header names, not the string "x-tenant"'],
    ['{ returns: number }', 'vouchedHeaders returned 5 at [1], not a header name'],
    ['{ returns: space }', 'vouchedHeaders returned the string "x tenant" at [0], not a header name'],
    ['{ returns: throw }', 'vouchedHeaders failed: no tenant'],
    // A header left out and no default: [undefined], which crashed the start (toLowerCase of undefined).
    ['', 'vouchedHeaders returned undefined at [0], not a header name']
  ]
  for (const [config, message] of cases) {
    const yaml = `loadPlugins: [ ./tenant.ts ]
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:1" } ] }
routes:
  - { name: a, match: { path: /a }, upstream: up, plugins: { tenant: ${config} } }
`
    const started = startGateway(yaml, { file: `${dir}/gateway.yaml` })
    // Should one start all the same, it is closed (the test fails).
    started.then(gw => gw.close(), () => {})
    await t.rejects(started, { message: `routes[0].plugins.tenant: the plugin's ${message}` }, `tenant: ${config}`)
  }
})
