import fastify, { type FastifyInstance } from 'fastify'
import type { Metrics } from '../metrics/metrics.ts'

/** What the admin API asks of the running gateway. */
export interface AdminState {
  /** False while shutting down: load balancers should stop sending traffic. */
  readonly ready: boolean
  readonly metrics: Metrics
}

/** The admin listener (loopback by default): health and readiness for orchestrators. */
export function createAdminServer (state: AdminState): FastifyInstance {
  const app = fastify({ logger: false, return503OnClosing: false })
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    if (!state.ready) return reply.code(503).send({ status: 'not_ready' })
    return { status: 'ready' }
  })
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', state.metrics.registry.contentType)
    return state.metrics.registry.metrics()
  })
  app.setNotFoundHandler((req, reply) => { void reply.code(404).send({ error: 'not_found', message: `no admin endpoint ${req.method} ${req.url}` }) })
  return app
}
