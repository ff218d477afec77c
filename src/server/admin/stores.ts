import type { Endpoints } from './endpoints.ts'
import type { AdminState } from './state.ts'

/**
 * The stores plugins use and whether each is reachable. /readyz does not look at them on purpose:
 * a Redis outage is the plugins' to handle (fail open or closed, as configured), and taking every
 * instance out of its load balancer for it would turn a degraded feature into a full outage.
 */
export function storeEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/stores', async () => ({ stores: await state.stores() }))
}
