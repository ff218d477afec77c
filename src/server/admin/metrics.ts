import type { Endpoints } from './endpoints.ts'
import type { AdminState } from './state.ts'
import { CONTENT_TYPE, expositionFormat } from '../../metrics/exposition.ts'

/** Prometheus scrape endpoint: OpenMetrics (with exemplars) when the scraper asks for it, else Prometheus text. */
export function metricsEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/metrics', async (req, reply) => {
    const format = expositionFormat(req.headers.accept)
    void reply.header('content-type', CONTENT_TYPE[format]).header('vary', 'Accept')
    return state.metrics(format)
  })
}
