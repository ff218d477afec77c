import { definePlugin } from '../../src/index.ts'
import { DEFAULTS, RedirectSchema } from './schema.ts'
import { compileTemplate, uriSafe } from './template.ts'

/** Answers with a redirect to a Location built from the route's params. Priority 785: as request-termination. */
export default definePlugin({
  name: 'redirect',
  priority: 785,
  schema: RedirectSchema,
  // A top-level redirect meets each route's params in the config check (see check-plugins.ts), and again in setup.
  check (config, route) {
    const problem = route === undefined ? undefined : compileTemplate(config.to, route.params)
    return typeof problem === 'string' ? [{ path: ['to'], message: problem }] : []
  },
  setup (config, ctx) {
    const compile = (template: string) => {
      const built = compileTemplate(template, ctx.routeParams)
      if (typeof built === 'string') throw new Error(`route "${ctx.routeName}", plugins.redirect.to ${built}`)
      return built
    }
    // The query goes before a #fragment of the template: after it, it would be part of the fragment.
    const hash = config.to.indexOf('#')
    const base = hash < 0 ? config.to : config.to.slice(0, hash)
    const location = compile(base)
    const fragment = hash < 0 ? undefined : compile(config.to.slice(hash))
    const status = config.status ?? DEFAULTS.status
    const keepQuery = config.keepQuery ?? DEFAULTS.keepQuery
    const joiner = base.includes('?') ? '&' : '?'
    return {
      onRequest (req) {
        const target = location(req.params)
        // The client's query as a URI may hold it: a `"` or `<` in a Location is no URI (RFC 3986).
        const query = keepQuery && req.query !== '' ? joiner + uriSafe(req.query.slice(1)) : ''
        return { status, headers: { location: fragment === undefined ? target + query : target + query + fragment(req.params) } }
      }
    }
  }
})
