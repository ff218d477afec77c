import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose'
import { Consumers } from '../../src/consumers/consumers.ts'
import type { GatewayRequest, PluginSetupContext } from '../../src/index.ts'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import plugin from './index.ts'
import type { JwtAuthConfig } from './schema.ts'
import { TokenCache } from './token-cache.ts'

setFlagsFromString('--expose-gc')
const ISS = 'https://idp.example.com'

// The cache, which no client can see (only the CPU it saves: `npm run bench:auth`): the plugin
// set up with a context of our own, whose ctx.shared hands it a key set that counts its lookups
// and keeps the rest (the token caches) per config, as the gateway's does.

const rs = await signingKey('RS256', 'rs')
const local = createLocalJWKSet({ keys: [rs.jwk] })

/** One config: its remote key set (ours, counting its lookups) and its other ctx.shared values. */
function config () {
  const keys = { lookups: 0, generation: 0, key: ((header, token) => { keys.lookups++; return local(header, token) }) as JWTVerifyGetKey }
  return { keys, shared: new Map<string, unknown>() }
}
type Config = ReturnType<typeof config>

// One for every route, as the gateway's routes share its logger: one each weighed in the memory test below.
const log = memoryLogger().log

/** The plugin's hook on a route of config `on` with `settings` (a remote key set: ours), and how often it looked a key up. */
async function route (settings: Partial<JwtAuthConfig>, on: Config = config()) {
  const ctx = {
    routeName: 'r',
    consumers: new Consumers([]),
    log,
    metrics: { counter: () => ({ labels: () => ({ inc () {} }) }) },
    shared<T> (key: string, create: () => T): T {
      if (key.startsWith('keys ')) return on.keys as T
      if (!on.shared.has(key)) on.shared.set(key, create())
      return on.shared.get(key) as T
    },
    configsOf: () => [],
    redactHeaders: () => {}
  } as unknown as PluginSetupContext
  const defaults = { maxTokenBytes: 8192, cacheSize: 10_000, consumerClaim: 'sub', requireExp: true, realm: 'portcullis' }
  const handlers = await plugin.setup({ ...defaults, jwksUri: 'https://idp.example.com/jwks', ...settings } as JwtAuthConfig, ctx)
  const onRequest = handlers?.onRequest as (req: GatewayRequest) => unknown
  const request = (token: string) => {
    const req = { id: '1', route: { name: 'r' }, headers: { authorization: `Bearer ${token}` }, locals: {}, query: '' } as unknown as GatewayRequest
    return { req, result: onRequest(req) }
  }
  return { keys: on.keys, request }
}

t.test('a verified token is kept: the same token again costs no verification, and answers at once (not a promise)', async t => {
  const { keys, request } = await route({})
  const token = await mint(rs, { sub: 'alice' })
  const first = request(token)
  t.ok(first.result instanceof Promise, 'the first time: verified')
  t.equal(await first.result, undefined, 'admitted')
  t.equal(keys.lookups, 1)
  const again = request(token)
  t.equal(again.result, undefined, 'the second time: admitted synchronously')
  t.equal(again.req.consumer?.id, 'alice')
  t.equal(keys.lookups, 1, 'no key looked up')
  const other = request(await mint(rs, { sub: 'bob' }))
  await other.result
  t.equal(other.req.consumer?.id, 'bob', 'another token is another entry')
  t.equal(keys.lookups, 2)
  keys.generation = 1
  const after = request(token)
  t.ok(after.result instanceof Promise, 'a key left the set since: verified again')
  await after.result
  t.equal(keys.lookups, 3)
  await request(token).result
  t.equal(keys.lookups, 3, 'and kept again, for the new generation')
})

t.test('cacheSize: 0 verifies every time', async t => {
  const { keys, request } = await route({ cacheSize: 0 })
  const token = await mint(rs, { sub: 'alice' })
  for (let i = 0; i < 3; i++) t.equal(await request(token).result, undefined)
  t.equal(keys.lookups, 3)
})

t.test('refused tokens are not kept as admitted', async t => {
  const { keys, request } = await route({ scopes: ['admin'] })
  const token = await mint(rs, { sub: 'alice', scope: 'read' })
  for (let i = 0; i < 2; i++) t.match(await request(token).result, { status: 403 })
  t.equal(keys.lookups, 2)
})

const caches = (on: Config) => [...on.shared.values()].filter(v => v instanceof TokenCache)

t.test('routes of one config whose settings give a token the same worth share one cache', async t => {
  const on = config()
  const plain = await route({ issuer: ISS }, on)
  // Where the token is read and how a route answers without one: not what a token is worth.
  const other = await route({ issuer: ISS, realm: 'orders', from: [{ query: 'token' }, { header: 'authorization', scheme: 'Bearer' }], hideCredentials: true, optional: true, maxTokenBytes: 4096 }, on)
  t.equal(caches(on).length, 1, 'one cache for both')
  const token = await mint(rs, { iss: ISS, sub: 'alice' })
  t.equal(await plain.request(token).result, undefined, 'verified on one route')
  const there = other.request(token)
  t.equal(there.result, undefined, 'and admitted on the other at once, from the cache')
  t.equal(there.req.consumer?.id, 'alice')
  t.equal(on.keys.lookups, 1)
})

t.test('routes with settings of their own have caches of their own: a token cached on one route is judged by the others\' rules', async t => {
  const on = config()
  const { request } = await route({ issuer: ISS }, on)
  const token = await mint(rs, { iss: ISS, sub: 'alice', client_id: 'billing', scope: 'read' })
  t.equal(await request(token).result, undefined, 'verified and kept on the first route')
  t.equal(request(token).result, undefined, 'kept: admitted at once')
  const others = {
    issuer: { issuer: 'https://other.example.com' },
    audience: { issuer: ISS, audience: 'orders-api' },
    algorithms: { issuer: ISS, algorithms: ['ES256'] },
    scopes: { issuer: ISS, scopes: ['admin'] },
    claims: { issuer: ISS, claims: { tenant: 'acme' } },
    requireConsumer: { issuer: ISS, requireConsumer: true }
  } satisfies Record<string, Partial<JwtAuthConfig>>
  for (const [name, settings] of Object.entries(others)) {
    const there = (await route(settings, on)).request(token)
    t.ok(there.result instanceof Promise, `${name}: not from the first route's cache`)
    t.match(await there.result, { status: Number }, `${name}: refused`)
  }
  const byClient = (await route({ issuer: ISS, consumerClaim: 'client_id' }, on)).request(token)
  t.equal(await byClient.result, undefined)
  t.equal(byClient.req.consumer?.id, 'billing', 'consumerClaim: the consumer its own settings name, not the cached one')
  t.equal(caches(on).length, 2 + Object.keys(others).length, 'one cache each')
})

t.test('a config of its own (a reload) has a cache of its own', async t => {
  const token = await mint(rs, { sub: 'alice' })
  const before = await route({})
  t.equal(await before.request(token).result, undefined)
  t.equal(before.request(token).result, undefined, 'kept in the first config')
  const after = await route({})
  t.ok(after.request(token).result instanceof Promise, 'verified again in the new one')
})

t.test('a cache grows with the tokens kept: routes with settings of their own do not each cost cacheSize entries at load', async t => {
  const gc = runInNewContext('gc') as () => void
  const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed }
  const on = config()
  const hooks: unknown[] = []
  const before = heap()
  // A scope each: 300 caches. Each allocated its index for 10,000 entries (160 kB) at load: 48 MB.
  for (let i = 0; i < 300; i++) hooks.push(await route({ scopes: [`s${i}`] }, on))
  const grown = heap() - before
  t.equal(caches(on).length, 300)
  t.ok(grown < 12e6, `300 routes took ${Math.round(grown / 1e6)} MB (at most 12)`)
})
