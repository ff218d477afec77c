import type { Endpoints } from './endpoints.ts'
import type { AdminState } from './state.ts'

/** Liveness and readiness probes (open without the admin token). */
export function healthEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/healthz', (_req, reply) => state.live ? { status: 'ok' } : reply.code(503).send({ status: 'unresponsive' }), { open: true })
  api.add('GET', '/readyz', (_req, reply) => state.ready ? { status: 'ready' } : reply.code(503).send({ status: 'not_ready' }), { open: true })
}
