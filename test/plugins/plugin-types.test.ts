import t from 'tap'
import { definePlugin, Type, type Counter, type Gauge, type Histogram, type Logger, type PluginAdminHandler, type Store } from '../../src/index.ts'

// Types a plugin author declares with, from "portcullis" alone: `npx tsc --noEmit` checks this file
// (a plugin's folder may have no node_modules to import prom-client or pino from).

// An admin handler may return nothing (a 204), as docs/plugins.md's ctx.shared example does.
const purge: PluginAdminHandler = async () => {}
const nothing: PluginAdminHandler = () => {}

interface State { hits: Counter<'route'>, latency: Histogram<'route'>, open: Gauge, log: Logger }

const plugin = definePlugin({
  name: 'typed',
  priority: 500,
  schema: Type.Object({}),
  setup (_config, ctx) {
    const state: State = {
      hits: ctx.metrics.counter({ name: 'portcullis_typed_hits_total', help: 'hits', labelNames: ['route'] }),
      latency: ctx.metrics.histogram({ name: 'portcullis_typed_latency_seconds', help: 'latency', labelNames: ['route'] }),
      open: ctx.metrics.gauge({ name: 'portcullis_typed_open', help: 'open' }),
      log: ctx.log
    }
    const store = ctx.store('visits')
    ctx.shared('stores', () => {
      const stores = new Set<Store>()
      ctx.admin.route('POST', '/purge', async () => { for (const s of stores) await s.deletePrefix('visits:') })
      return stores
    }).add(store)
    return { onRequest () { state.hits.inc({ route: ctx.routeName }) } }
  }
})

t.equal(plugin.name, 'typed')
t.type(purge, 'function')
t.type(nothing, 'function')
