import { describeRoute, type RouteDescription } from '../../runtime/describe-route.ts'
import type { CompiledRoute } from '../../runtime/compile-route.ts'
import type { Endpoints } from './endpoints.ts'
import { redactSecrets } from '../../config/redact.ts'
import type { AdminState } from './state.ts'

/** A route as GET /routes shows it: header matchers' values redacted, as GET /config shows them. */
function shownRoute (r: CompiledRoute): RouteDescription {
  const described = describeRoute(r)
  return { ...described, headers: (redactSecrets({ headers: described.headers }) as Pick<RouteDescription, 'headers'>).headers }
}

/** What the active config is made of: routes in precedence order, upstreams with their targets' state. */
export function inventoryEndpoints (api: Endpoints, state: AdminState): void {
  api.add('GET', '/routes', () => ({ routes: state.runtime.router.ordered().map(shownRoute) }))
  api.add('GET', '/upstreams', async () => ({ upstreams: await state.upstreams() }))
}
