import type { GatewayConfig } from './schema.ts'
import type { SchemaProblem } from './validate.ts'

/**
 * What loads but is likely not meant, of a config that passed every check: no routes at all, or a
 * literal path with a trailing slash, which matches only itself (nginx's `location /c/` is a prefix;
 * here that is `/c/*`).
 */
export function routeWarnings (config: GatewayConfig): SchemaProblem[] {
  if (config.routes.length === 0) return [{ path: ['routes'], at: 'key', message: 'no routes: every request is answered 404' }]
  // A `/c/` beside a `/c/*` route is deliberate.
  const paths = new Set(config.routes.map(r => r.match.path))
  return config.routes.flatMap((route, i) => {
    const path = route.match.path
    if (path === '/' || !path.endsWith('/') || path.includes('/:') || paths.has(path + '*')) return []
    return [{ path: ['routes', i, 'match', 'path'], at: 'key', message: `"${path}" matches only ${path} itself; for everything below it write ${path}*` }]
  })
}
