import type { Endpoints } from './endpoints.ts'
import type { AdminState } from './state.ts'
import { CONTENT_TYPE, expositionFormat, type ExpositionFormat } from '../../metrics/exposition.ts'

/**
 * Prometheus scrape endpoint: OpenMetrics (with exemplars) when the scraper asks for it, else Prometheus text.
 * Scrapes that come together share one render per format: while it is made, and for the rest of the
 * event loop's turn that made it (a render is CPU, and clients sending hundreds at once cost hundreds).
 */
export function metricsEndpoints (api: Endpoints, state: AdminState): void {
  const renders = new Map<ExpositionFormat, Promise<string>>()
  const render = (format: ExpositionFormat): Promise<string> => {
    let shared = renders.get(format)
    if (shared !== undefined) return shared
    shared = state.metrics(format)
    renders.set(format, shared)
    const forget = () => { setImmediate(() => renders.delete(format)) }
    shared.then(forget, forget)
    return shared
  }
  api.add('GET', '/metrics', async (req, reply) => {
    const format = expositionFormat(req.headers.accept)
    void reply.header('content-type', CONTENT_TYPE[format]).header('vary', 'Accept')
    return render(format)
  })
}
