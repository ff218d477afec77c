import t from 'tap'
import { Registry } from 'prom-client'
import { Consumers } from '../../src/consumers/consumers.ts'
import type { GatewayRequest, PluginReply } from '../../src/index.ts'
import { pluginMetrics } from '../../src/metrics/plugin-metrics.ts'
import { PluginAdminRoutes } from '../../src/plugins/admin-routes.ts'
import { setupContext, type PluginServices } from '../../src/plugins/context.ts'
import { StoreRegistry } from '../../src/stores/registry.ts'
import { memoryLogger } from '../../test/helpers/gateway.ts'
import plugin from './index.ts'
import type { RateLimitSchema } from './schema.ts'

// A config's plans are built once per distinct rate-limit config, from the consumers that override a
// limit (found once): thousands of routes and tens of thousands of consumers otherwise cost
// routes x consumers at every load.

const consumers = new Consumers([
  { id: 'vip', metadata: { 'rate-limit': { minute: { requests: 3 } } } },
  ...Array.from({ length: 50 }, (_, i) => ({ id: `plain-${i}` }))
])

async function route (on: PluginServices, name: string, config: typeof RateLimitSchema.static) {
  const ctx = setupContext(on, plugin.name, name, `/${name}`, [], memoryLogger().log, new Set())
  return (await plugin.setup(config, ctx))?.onRequest as (req: GatewayRequest) => PluginReply | undefined | Promise<PluginReply | undefined>
}

/** The statuses of n requests of `consumer` on a route (200 when let through). */
async function statuses (hook: Awaited<ReturnType<typeof route>>, name: string, consumer: string, n: number): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const req = { id: String(i), route: { name }, headers: {}, locals: {}, query: '', ip: '127.0.0.1', consumer: consumers.get(consumer), extraResponseHeaders: {} } as unknown as GatewayRequest
    out.push((await hook(req))?.status ?? 200)
  }
  return out
}

t.test('routes with the same rate-limit settings share their plans; consumers overriding a limit are found once', async t => {
  const registry = new StoreRegistry(memoryLogger().log)
  const stores = registry.acquire({})
  t.teardown(() => stores.release())
  const shared = new Map<string, unknown>()
  const on: PluginServices = { stores, consumers, metrics: pluginMetrics(new Registry()), admin: new PluginAdminRoutes(), shared, configsOf: () => [] }
  const limits = [{ name: 'minute', requests: 1, window: '1m' }]
  const a = await route(on, 'a', { limits })
  const b = await route(on, 'b', { limits })
  const c = await route(on, 'c', { limits: [{ name: 'minute', requests: 2, window: '1m' }] })
  const values = [...shared.values()]
  t.equal(values.filter(v => typeof v === 'object' && v !== null && 'plans' in v).length, 2, 'two distinct settings, two plans')
  const overriding = values.filter(Array.isArray)
  t.same(overriding.map(list => (list as Array<{ id: string }>).map(c => c.id)), [['vip']], 'the overriding consumers, found once')

  t.same(await statuses(a, 'a', 'plain-1', 2), [200, 429], 'the route\'s limit')
  t.same(await statuses(b, 'b', 'plain-2', 2), [200, 429], 'on a route sharing its plans')
  t.same(await statuses(c, 'c', 'plain-3', 3), [200, 200, 429], 'a route with its own settings')
  t.same(await statuses(b, 'b', 'vip', 4), [200, 200, 200, 429], 'the consumer\'s own limit, on a route sharing plans')
})
