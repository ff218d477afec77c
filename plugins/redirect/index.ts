import { definePlugin } from '../../src/index.ts'
import { normalizePath, routingForm } from '../../src/routing/normalize-path.ts'
import { compilePathPattern, type PathPattern } from '../../src/routing/path-pattern.ts'
import { chainOf } from '../shared/auth/chain.ts'
import { DEFAULTS, RedirectSchema } from './schema.ts'
import { compileOrigin, compileTemplate } from './template.ts'

// What a param stands for when a Location is tried against the route: no route's literal segment.
const SAMPLE_PARAM = 'portcullis~redirect~sample'

/**
 * Whether the path of a path-relative Location (`/loop/x`, the params sampled) is one the route
 * itself matches, as the gateway routes a request for it: a loop, unless another route takes it.
 */
function leadsBack (location: (params: Readonly<Record<string, string>>, query: string) => string, routePath: string, params: readonly string[]): boolean {
  const sampled = location(Object.fromEntries(params.map(name => [name, SAMPLE_PARAM])), '')
  if (!sampled.startsWith('/') || sampled.startsWith('//')) return false
  const path = normalizePath(sampled.split(/[?#]/, 1)[0] as string)
  return path !== undefined && (compilePathPattern(routePath) as PathPattern /* the route's, valid */).match(routingForm(path)) !== undefined
}

/** Answers with a redirect to a Location built from the route's params. Priority 785: as request-termination. */
export default definePlugin({
  name: 'redirect',
  priority: 785,
  schema: RedirectSchema,
  // A top-level redirect meets each route's params in the config check (see check-plugins.ts), and again in setup;
  // its host, which holds no params, is checked once without them.
  check (config, route) {
    const problem = route === undefined ? compileOrigin(config.to) : compileTemplate(config.to, route.params)
    return typeof problem === 'string' ? [{ path: ['to'], message: problem }] : []
  },
  setup (config, ctx) {
    const location = compileTemplate(config.to, ctx.routeParams)
    if (typeof location === 'string') throw new Error(`route "${ctx.routeName}", plugins.redirect.to ${location}`)
    if (leadsBack(location, ctx.routePath, ctx.routeParams)) {
      ctx.log.warn({ to: config.to }, `redirect: to "${config.to}" is a path this route's match.path "${ctx.routePath}" matches: ` +
        'clients are redirected to this route again and again, unless another route takes that path first or the route\'s methods or headers leave the redirected request out')
    }
    const status = config.status ?? DEFAULTS.status
    const keepQuery = config.keepQuery ?? DEFAULTS.keepQuery
    // The route's auth plugins (set up before redirect, which runs after them) read credentials from
    // these query parameters: kept, the Location would hand them to wherever it points, hideCredentials or not.
    const credentials = chainOf(ctx).members.flatMap(m => m.removeFromQuery ?? [])
    return {
      onRequest (req) {
        if (!keepQuery) return { status, headers: { location: location(req.params, '') } }
        for (const remove of credentials) remove(req)
        return { status, headers: { location: location(req.params, req.query.slice(1)) } }
      }
    }
  }
})
