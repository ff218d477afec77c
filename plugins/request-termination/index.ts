import { definePlugin, type HeaderMap, type PluginReply } from '../../src/index.ts'
import { DEFAULTS, RequestTerminationSchema } from './schema.ts'

/**
 * Answers every request of the route with a fixed status, headers and body, without proxying
 * (maintenance, 410 Gone). Priority 790: after authentication and rate limiting, before the cache.
 */
export default definePlugin({
  name: 'request-termination',
  priority: 790,
  schema: RequestTerminationSchema,
  setup (config) {
    const headers: HeaderMap = {}
    for (const [name, value] of Object.entries(config.headers ?? {})) headers[name.toLowerCase()] = value
    if (typeof config.body === 'string') headers['content-type'] ??= 'text/plain; charset=utf-8'
    // Built once: the exchange copies the headers of a reply, so one object serves every request.
    const reply: PluginReply = { status: config.status ?? DEFAULTS.status, headers, body: config.body }
    return { onRequest: () => reply }
  }
})
