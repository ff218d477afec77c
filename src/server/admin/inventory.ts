import { describeRoute } from '../../runtime/describe-route.ts'
import type { Endpoints } from './endpoints.ts'
import type { AdminState } from './state.ts'

/** What the active config is made of: routes in precedence order, upstreams with their targets' state. */
export function inventoryEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/routes', () => ({ routes: state.runtime.router.ordered().map(describeRoute) }))
  api.add('GET', '/upstreams', async () => ({ upstreams: await state.upstreams() }))
}
