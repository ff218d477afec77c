import type { Endpoints } from './endpoints.ts'
import { NoWorkerServing, WorkersMissing, type AdminState } from './state.ts'

/**
 * The stores plugins use and whether each is reachable. /readyz does not look at them on purpose:
 * a Redis outage is the plugins' to handle (fail open or closed, as configured), and taking every
 * instance out of its load balancer for it would turn a degraded feature into a full outage.
 * In worker mode only the workers hold stores: with none serving, 503 (as /readyz); with none
 * answering in time, 504 naming them under `missing`; some of them, the others' view and `missing`.
 */
export function storeEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/stores', async (_req, reply) => {
    try {
      return await state.stores()
    } catch (err) {
      if (err instanceof WorkersMissing) return reply.code(504).send({ error: NoWorkerServing.code, message: err.message, missing: err.missing })
      if (!(err instanceof NoWorkerServing)) throw err
      return reply.code(503).send({ error: NoWorkerServing.code, message: err.message })
    }
  })
}
