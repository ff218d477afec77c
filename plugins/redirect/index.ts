import { definePlugin } from '../../src/index.ts'
import { normalizePath, routingForm } from '../../src/routing/normalize-path.ts'
import { compilePathPattern, type PathPattern } from '../../src/routing/path-pattern.ts'
import { chainOf } from '../shared/auth/chain.ts'
import { DEFAULTS, RedirectSchema } from './schema.ts'
import { compileOrigin, compileTemplate } from './template.ts'

// What a param stands for when a Location is tried against the route: no route's literal segment.
const SAMPLE_PARAM = 'portcullis~redirect~sample'

/**
 * Whether a path-relative Location (`/loop/x`, the params sampled) is one the route matches with the
 * same params, as the gateway routes a request for it: the redirected request is redirected to the
 * same Location again, for ever (no other route can take that path first, the route took it). One
 * the route matches with other params (`/v1/*` to `/v1/api/*`) may be a more specific route's.
 */
function leadsBack (location: (params: Readonly<Record<string, string>>, query: string) => string, routePath: string, params: readonly string[]): boolean {
  const sampled = location(Object.fromEntries(params.map(name => [name, SAMPLE_PARAM])), '')
  if (!sampled.startsWith('/') || sampled.startsWith('//')) return false
  const path = normalizePath(sampled.split(/[?#]/, 1)[0] as string)
  const back = path === undefined ? undefined : (compilePathPattern(routePath) as PathPattern /* the route's, valid */).match(routingForm(path))
  return back !== undefined && params.every(name => back[name] === SAMPLE_PARAM)
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
      ctx.log.warn({ to: config.to }, `redirect: to "${config.to}" leads back to this route ("${ctx.routePath}") with the same params: ` +
        'clients are redirected to the same place again and again, unless the route\'s methods or headers leave the redirected request out')
    }
    const status = config.status ?? DEFAULTS.status
    const keepQuery = config.keepQuery ?? DEFAULTS.keepQuery
    // The route's auth plugins (set up before redirect, which runs after them) read credentials from
    // these query parameters: kept, a Location to another origin would hand them to it, hideCredentials
    // or not. Any with a host drops them, this gateway's too: its public origin is not known surely
    // (TLS may end before it, the Host is the client's). A path-relative one keeps them: the client
    // sends them here again (an API version moved).
    const offSite = (compileOrigin(config.to) as { text: string }).text !== ''
    const credentials = offSite ? chainOf(ctx).members.flatMap(m => m.removeFromQuery ?? []) : []
    return {
      onRequest (req) {
        if (!keepQuery) return { status, headers: { location: location(req.params, '') } }
        for (const remove of credentials) remove(req)
        return { status, headers: { location: location(req.params, req.query.slice(1)) } }
      }
    }
  }
})
