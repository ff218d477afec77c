import { definePlugin, type HeaderMap, type PluginConfigProblem, type PluginReply } from '../../src/index.ts'
import { caseTwins, headerBytes } from '../shared/header-edits.ts'
import { DEFAULTS, RequestTerminationSchema, type RequestTerminationConfig } from './schema.ts'

/** A header that describes content, which these have none of; the schema refuses Content-Length. */
const CONTENT_HEADER = 'content-type'

/**
 * The statuses (the schema allows 200-599) that have no content (RFC 9110 15.3.5, 15.3.6,
 * 15.4.5): 204, 205 (MUST NOT generate content) and 304.
 */
const CONTENTLESS = new Set([204, 205, 304])

/** A body, or a header describing one, with a status that has no content. */
function contentlessProblems (config: RequestTerminationConfig): PluginConfigProblem[] {
  const status = config.status ?? DEFAULTS.status
  if (!CONTENTLESS.has(status)) return []
  const message = `a ${status} response has no content: remove it, or answer another status`
  const problems: PluginConfigProblem[] = Object.keys(config.headers ?? {})
    .filter(name => name.toLowerCase() === CONTENT_HEADER)
    .map(name => ({ path: ['headers', name], message }))
  if (config.body !== undefined) problems.unshift({ path: ['body'], message })
  return problems
}

// The body is sent as written (compress encodes it after, itself): a coding named here is false,
// and compress, reading the reply as encoded, would decode plain bytes (a 502) or pass them on labelled so.
const CODING = 'Content-Encoding cannot be set (but to identity): the body is sent as written, never encoded, so clients would decode plain bytes; ' +
  'compress on the route encodes the reply itself'

// Host names the request's site: the gateway drops one a plugin puts on a response (src/proxy/hop-by-hop.ts).
const NO_HOST = 'Host cannot be sent: it is a request header, and the gateway drops it from every response'
const hostProblems = (config: RequestTerminationConfig): PluginConfigProblem[] => Object.keys(config.headers ?? {})
  .filter(name => name.toLowerCase() === 'host').map(name => ({ path: ['headers', name], message: NO_HOST }))

/** A Content-Encoding other than identity. */
const codingProblems = (config: RequestTerminationConfig): PluginConfigProblem[] => Object.entries(config.headers ?? {})
  .filter(([name, value]) => name.toLowerCase() === 'content-encoding' && value.trim().toLowerCase() !== 'identity')
  .map(([name]) => ({ path: ['headers', name], message: CODING }))

/**
 * Answers every request of the route with a fixed status, headers and body, without proxying
 * (maintenance, 410 Gone). Priority 790: after authentication and rate limiting, before the cache.
 */
export default definePlugin({
  name: 'request-termination',
  priority: 790,
  schema: RequestTerminationSchema,
  check: config => [...caseTwins(config.headers, 'headers'), ...contentlessProblems(config), ...codingProblems(config), ...hostProblems(config)],
  setup (config) {
    const headers: HeaderMap = {}
    for (const [name, value] of Object.entries(config.headers ?? {})) headers[name.toLowerCase()] = headerBytes(value)
    if (typeof config.body === 'string') headers['content-type'] ??= 'text/plain; charset=utf-8'
    // Built once: the exchange copies the headers of a reply, so one object serves every request.
    const reply: PluginReply = { status: config.status ?? DEFAULTS.status, headers, body: config.body }
    return { onRequest: () => reply }
  }
})
