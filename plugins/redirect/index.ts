import { definePlugin } from '../../src/index.ts'
import { DEFAULTS, RedirectSchema } from './schema.ts'
import { compileOrigin, compileTemplate } from './template.ts'

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
    const status = config.status ?? DEFAULTS.status
    const keepQuery = config.keepQuery ?? DEFAULTS.keepQuery
    return {
      onRequest (req) {
        return { status, headers: { location: location(req.params, keepQuery ? req.query.slice(1) : '') } }
      }
    }
  }
})
