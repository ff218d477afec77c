import { definePlugin, defineScript, StoreName, Type } from '../../src/index.ts'

/** What probe plugins did: "shared <config routes>", "dispose shared". */
export function probeEvents (): string[] {
  const g = globalThis as Record<symbol, string[] | undefined>
  return (g[Symbol.for('portcullis.test.probeEvents')] ??= [])
}

const count = defineScript<number>({
  name: 'probe-count',
  lua: "return redis.call('INCR', KEYS[1])",
  local: (data, keys) => {
    const key = keys[0] as string
    const n = Number(data.get(key) ?? 0) + 1
    data.set(key, n)
    return n
  }
})

/**
 * A user plugin that uses every part of the setup context: a store script (x-probe-count
 * upstream), consumers by credential (x-probe-key), a metric, admin endpoints added once from
 * ctx.shared, and the consumer seen again in the response phase (x-consumer).
 */
export default definePlugin({
  name: 'probe',
  priority: 2000,
  schema: Type.Object({
    store: Type.Optional(StoreName()),
    tag: Type.Optional(Type.String()),
    reply: Type.Optional(Type.Integer({ description: 'Answer with this status instead of proxying.' }))
  }, { additionalProperties: false }),
  credentials: {
    schema: Type.Object({ key: Type.String({ minLength: 4 }) }, { additionalProperties: false }),
    identities: c => [c.key]
  },
  setup (config, ctx) {
    const requests = ctx.metrics.counter({ name: 'portcullis_probe_requests_total', help: 'Requests the probe saw.', labelNames: ['route'] })
    const keys = new Map(ctx.credentials.map(c => [(c.credential as { key: string }).key, c.consumer]))
    const shared = ctx.shared('routes', () => {
      const routes: string[] = []
      ctx.admin.route('GET', '/routes', () => ({ body: { routes } }))
      ctx.admin.route('POST', '/echo', req => ({ status: 201, body: { got: req.body, query: req.query, path: req.path } }))
      return { routes, dispose () { probeEvents().push(`dispose shared ${routes.join(',')}`) } }
    })
    shared.routes.push(ctx.routeName)
    const store = ctx.store(config.store)
    return {
      async onRequest (req) {
        requests.inc({ route: ctx.routeName })
        const key = req.clientHeaders['x-probe-key']
        if (typeof key === 'string') req.consumer = keys.get(key)
        req.headers['x-probe-tag'] = config.tag ?? 'none'
        req.headers['x-probe-count'] = String(await store.run(count, [`probe:${ctx.routeName}`], []))
        if (config.reply !== undefined) return { status: config.reply, body: { error: 'probe' } }
      },
      onResponse (res, req) {
        if (req.consumer !== undefined) res.headers['x-consumer'] = req.consumer.id
      }
    }
  }
})
