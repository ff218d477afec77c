import { METHODS } from 'node:http'
import { definePlugin, type HeaderMap, type PluginConfigProblem } from '../../src/index.ts'
import { addVary } from '../shared/vary.ts'
import { compileOrigins, originProblem, originWarning } from './origins.ts'
import { CorsSchema, DEFAULTS, type CorsConfig } from './schema.ts'

const PREFLIGHT_VARY = 'origin, access-control-request-method, access-control-request-headers'
/** The CORS response headers: on a cors route, only the gateway's config sets them. */
const CORS_HEADERS = [
  'access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers',
  'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age',
  // Private Network Access: the upstream's would open it to every origin; the gateway does not answer PNA.
  'access-control-allow-private-network'
]
/** Lists where browsers take `*` literally (a header or method named `*`) when credentials are on. */
const LISTS = ['methods', 'headers', 'exposeHeaders'] as const

/** What is wrong with a config, by the config: the routes given one object (a YAML alias, the top-level cors) are checked once. */
const checked = new WeakMap<CorsConfig, PluginConfigProblem[]>()

function problemsOf (config: CorsConfig): PluginConfigProblem[] {
  const credentials = config.credentials ?? DEFAULTS.credentials
  const problems: PluginConfigProblem[] = config.origins.flatMap((entry, i) => {
    const message = originProblem(entry, credentials)
    return message === undefined ? [] : [{ path: ['origins', i], message }]
  })
  config.methods?.forEach((name, i) => {
    // As route methods (match.methods): in any case, among those Node's parser knows (no other reaches the gateway).
    if (name !== '*' && !METHODS.includes(name.toUpperCase())) problems.push({ path: ['methods', i], message: `unknown HTTP method "${name}" (the standard ones: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)` })
  })
  if (!credentials) return problems
  for (const key of LISTS) {
    config[key]?.forEach((name, i) => {
      if (name === '*') problems.push({ path: [key, i], message: 'with credentials: true, browsers take `*` literally, as a name: list the names' })
    })
  }
  return problems
}

/**
 * CORS at the gateway: preflights answered here (never forwarded), CORS headers on every response to
 * an allowed origin, the upstream's, plugins' and the gateway's errors alike. Priority 3100, the
 * highest built-in: preflights pass before authentication, and its response hook runs last.
 */
export default definePlugin({
  name: 'cors',
  priority: 3100,
  schema: CorsSchema,
  check: config => {
    let problems = checked.get(config)
    if (problems === undefined) checked.set(config, problems = problemsOf(config))
    return problems
  },
  setup (config, ctx) {
    // GET-only routes are valid for simple requests (no preflight): a warning, not a check's error.
    if (ctx.routeMethods?.includes('OPTIONS') === false) ctx.log.warn('cors: this route\'s methods lack OPTIONS: browsers\' preflights get 405 method_not_allowed, without CORS headers, unless another route answers them')
    const credentials = config.credentials ?? DEFAULTS.credentials
    // Once per list (and credentials) for the config's routes: each pattern probed, compiled and warmed once.
    const { origins, warnings } = ctx.shared(`origins ${String(credentials)} ${JSON.stringify(config.origins)}`, () => ({
      origins: compileOrigins(config.origins, credentials),
      warnings: config.origins.map(originWarning)
    }))
    // Without credentials, browsers send no cookies to the origins a mistyped pattern lets in too:
    // a warning (with them, a config error), on each route.
    warnings.forEach((warning, i) => {
      if (warning !== undefined) ctx.log.warn(`cors: origins[${i}] ${config.origins[i] as string}: ${warning}`)
    })
    // `*` with credentials is refused at load (check): browsers refuse it, and echoing would let in any site.
    const star = origins.any
    // Upper-case, as requests come: browsers compare Access-Control-Allow-Methods case-sensitively (`put` never allows a PUT).
    const methods = [...new Set((config.methods ?? DEFAULTS.methods).map(m => m.toUpperCase()))].join(', ')
    const allowHeaders = config.headers?.join(', ')
    const expose = (config.exposeHeaders ?? DEFAULTS.exposeHeaders).join(', ')
    const maxAge = String(config.maxAge ?? DEFAULTS.maxAge)

    const allowOrigin = (h: HeaderMap, origin: string) => {
      h['access-control-allow-origin'] = star ? '*' : origin
      if (credentials) h['access-control-allow-credentials'] = 'true'
    }
    return {
      onRequest (req) {
        const origin = req.clientHeaders.origin
        if (req.method !== 'OPTIONS' || origin === undefined || req.clientHeaders['access-control-request-method'] === undefined) return undefined
        const headers: HeaderMap = { vary: PREFLIGHT_VARY }
        if (origins.allows(origin)) {
          allowOrigin(headers, origin)
          headers['access-control-allow-methods'] = methods
          const asked = req.clientHeaders['access-control-request-headers']
          const allowed = allowHeaders ?? asked
          if (allowed !== undefined && allowed !== '') headers['access-control-allow-headers'] = allowed
          headers['access-control-max-age'] = maxAge
        }
        return { status: 204, headers }
      },
      onResponse (res, req) {
        const h = res.headers
        addVary(h, 'origin')
        // The gateway owns CORS on this route: none of the upstream's CORS headers pass, whatever the
        // origin. Preflights never get here: answered in onRequest, before any plugin's reply.
        for (const name of CORS_HEADERS) if (h[name] !== undefined) h[name] = undefined
        const origin = req.clientHeaders.origin
        if (origin === undefined || !origins.allows(origin)) return
        allowOrigin(h, origin)
        if (expose !== '') h['access-control-expose-headers'] = expose
      }
    }
  }
})
