import type { Endpoints } from './endpoints.ts'
import type { AdminState } from './state.ts'

/** Prometheus scrape endpoint. */
export function metricsEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/metrics', async (_req, reply) => {
    void reply.header('content-type', state.metrics.contentType)
    return state.metrics.text()
  })
}
