import { definePlugin } from '../../src/index.ts'
import { DEFAULTS, RedirectSchema } from './schema.ts'
import { compileTemplate } from './template.ts'

/** Answers with a redirect to a Location built from the route's params. Priority 785: as request-termination. */
export default definePlugin({
  name: 'redirect',
  priority: 785,
  schema: RedirectSchema,
  // A top-level redirect is checked against each route's params in setup.
  check (config, route) {
    const problem = route === undefined ? undefined : compileTemplate(config.to, route.params)
    return typeof problem === 'string' ? [{ path: ['to'], message: problem }] : []
  },
  setup (config, ctx) {
    const location = compileTemplate(config.to, ctx.routeParams)
    if (typeof location === 'string') throw new Error(`route "${ctx.routeName}", plugins.redirect.to ${location}`)
    const status = config.status ?? DEFAULTS.status
    const keepQuery = config.keepQuery ?? DEFAULTS.keepQuery
    const joiner = config.to.includes('?') ? '&' : '?'
    return {
      onRequest (req) {
        const target = location(req.params)
        const query = keepQuery && req.query !== '' ? joiner + req.query.slice(1) : ''
        return { status, headers: { location: target + query } }
      }
    }
  }
})
