import type { GatewayConfig } from './schema.ts'
import type { SchemaProblem } from './validate.ts'

/**
 * What loads but is likely not meant, of a config that passed every check: no routes at all, or a
 * literal path with a trailing slash, which matches only itself (nginx's `location /c/` is a prefix;
 * here that is `/c/*`).
 */
export function routeWarnings (config: GatewayConfig): SchemaProblem[] {
  if (config.routes.length === 0) return [{ path: ['routes'], at: 'key', message: 'no routes: every request is answered 404' }]
  // A `/c/` beside a route below it (`/c/*`, `/c/:id`) or beside `/c` is a deliberate exact route.
  // Each path's own and those it is below (`/c/:id` is below `/c/`): one look-up per route, however many.
  const paths = new Set(config.routes.map(r => r.match.path))
  const above = new Set([...paths].flatMap(p => [...p.matchAll(/\//g)].map(m => p.slice(0, m.index + 1)).filter(a => a !== p)))
  return config.routes.flatMap((route, i) => {
    const path = route.match.path
    if (path === '/' || !path.endsWith('/') || path.includes('/:') || above.has(path) || paths.has(path.slice(0, -1))) return []
    return [{ path: ['routes', i, 'match', 'path'], at: 'key', message: `"${path}" matches only ${path} itself; for everything below it write ${path}*` }]
  })
}
