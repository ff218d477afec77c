import t from 'tap'
import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose'
import { Consumers } from '../../src/consumers/consumers.ts'
import type { GatewayRequest, PluginSetupContext } from '../../src/index.ts'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import { mint, signingKey } from '../../test/helpers/identity-provider.ts'
import plugin from './index.ts'
import type { JwtAuthConfig } from './schema.ts'

// The cache, which no client can see (only the CPU it saves: `npm run bench:auth`): the plugin
// set up with a context of our own, whose ctx.shared hands it a key set that counts its lookups.

const rs = await signingKey('RS256', 'rs')
const local = createLocalJWKSet({ keys: [rs.jwk] })

/** The plugin's hook on a route with `config` (a remote key set: ours), and how often it looked a key up. */
async function route (config: Partial<JwtAuthConfig>) {
  const keys = { lookups: 0, generation: 0, key: ((header, token) => { keys.lookups++; return local(header, token) }) as JWTVerifyGetKey }
  const ctx = {
    routeName: 'r',
    consumers: new Consumers([]),
    log: memoryLogger().log,
    metrics: { counter: () => ({ labels: () => ({ inc () {} }) }) },
    shared: () => keys,
    redactHeaders: () => {}
  } as unknown as PluginSetupContext
  const defaults = { maxTokenBytes: 8192, cacheSize: 10_000, consumerClaim: 'sub', requireExp: true, realm: 'portcullis' }
  const handlers = await plugin.setup({ ...defaults, jwksUri: 'https://idp.example.com/jwks', ...config } as JwtAuthConfig, ctx)
  const onRequest = handlers?.onRequest as (req: GatewayRequest) => unknown
  const request = (token: string) => {
    const req = { id: '1', route: { name: 'r' }, headers: { authorization: `Bearer ${token}` }, locals: {}, query: '' } as unknown as GatewayRequest
    return { req, result: onRequest(req) }
  }
  return { keys, request }
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
