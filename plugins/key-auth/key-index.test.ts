import t from 'tap'
import { Registry } from 'prom-client'
import { Consumers } from '../../src/consumers/consumers.ts'
import type { GatewayRequest, PluginReply } from '../../src/index.ts'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { PluginAdminRoutes } from '../../src/plugins/admin-routes.ts'
import { setupContext, type PluginServices } from '../../src/plugins/context.ts'
import type { StoreLease } from '../../src/stores/registry.ts'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import plugin from './index.ts'
import { KeyIndex } from './key-index.ts'
import type { KeyAuthSchema } from './schema.ts'

// The index of consumers' keys is built once per config, not once per route: a config of thousands
// of key-auth routes and tens of thousands of consumers would otherwise hold routes × keys entries.

const ALICE_KEY = 'alice-key-0123456789abcdef'
const BOB_KEY = 'bob-key-0123456789abcdefgh'

/** What one config gives the plugin: its consumers, and ctx.shared's values. */
function services (keys: Record<string, string>): PluginServices {
  const consumers = new Consumers(Object.entries(keys).map(([id, key]) => ({ id, credentials: { 'key-auth': { keys: [key] } } })))
  return { stores: {} as StoreLease, consumers, metrics: pluginMetrics(new Registry()), admin: new PluginAdminRoutes(), shared: new Map(), configsOf: () => [] }
}

type Hook = (req: GatewayRequest) => PluginReply | undefined
async function route (on: PluginServices, name: string, config: typeof KeyAuthSchema.static): Promise<Hook> {
  const ctx = setupContext(on, plugin.name, name, `/${name}`, [], memoryLogger().log, new Set())
  return (await plugin.setup(config, ctx))?.onRequest as Hook
}

/** The consumer id a request with these headers and query gets, or the status it is refused with. */
function call (hook: Hook, headers: Record<string, string>, query = ''): string | number | undefined {
  const req = { id: '1', route: { name: 'r' }, headers: { ...headers }, locals: {}, query } as unknown as GatewayRequest
  const reply = hook(req)
  return reply === undefined ? req.consumer?.id : reply.status
}

const indexes = (on: PluginServices) => [...on.shared.values()].filter(v => v instanceof KeyIndex)

t.test('routes of one config share one index, each still reading the key where its own config says', async t => {
  const config = services({ alice: ALICE_KEY, bob: BOB_KEY })
  const plain = await route(config, 'plain', {})
  const other = await route(config, 'other', { header: 'x-team-key', query: 'apikey' })
  const again = await route(config, 'again', {})
  t.equal(indexes(config).length, 1, 'one index for the three routes')

  t.equal(call(plain, { 'x-api-key': ALICE_KEY }), 'alice')
  t.equal(call(again, { 'x-api-key': BOB_KEY }), 'bob')
  t.equal(call(other, { 'x-team-key': BOB_KEY }), 'bob')
  t.equal(call(other, {}, `?apikey=${ALICE_KEY}`), 'alice')
  t.equal(call(other, { 'x-api-key': ALICE_KEY }), 401, 'not under another route\'s header')
  t.equal(call(plain, { 'x-api-key': 'nobody-has-this-key-0123' }), 401)
})

t.test('a config of its own (a reload) has an index of its own: a key it no longer holds is refused there only', async t => {
  const before = services({ alice: ALICE_KEY, bob: BOB_KEY })
  const after = services({ bob: BOB_KEY })
  const old = await route(before, 'r', {})
  const now = await route(after, 'r', {})
  t.not(indexes(before)[0], indexes(after)[0])
  t.equal(call(now, { 'x-api-key': ALICE_KEY }), 401, 'revoked by the new config')
  t.equal(call(now, { 'x-api-key': BOB_KEY }), 'bob')
  t.equal(call(old, { 'x-api-key': ALICE_KEY }), 'alice', 'the retired config is unchanged')
})
