import { definePlugin, type PluginConfigProblem } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits, type HeaderEdits } from '../shared/header-edits.ts'

// Node writes a Date on every response that has none (RFC 9110 6.6.1: a server with a clock sends one).
const NO_DATE = 'Date cannot be removed: the gateway writes the current date on every response that has none (RFC 9110 6.6.1)'

const check = (config: HeaderEdits): PluginConfigProblem[] =>
  (config.remove ?? []).flatMap((name, i) => name.toLowerCase() === 'date' ? [{ path: ['remove', i], message: NO_DATE }] : [])

/**
 * Edits the headers sent to the client: remove, rename, set (in that order). Priority 5000, above
 * every built-in: a plugin's reply goes through the response hooks of the plugins before it only,
 * so outermost, the edits apply to every answer of the route (a 401, a 429, a cache hit, a CORS
 * preflight), and after every other response hook (the cache stores the response unedited).
 */
export default definePlugin({
  name: 'response-headers',
  priority: 5000,
  schema: HeaderEditsSchema,
  check,
  setup (config) {
    const edit = compileHeaderEdits(config)
    return { onResponse (res) { edit(res.headers) } }
  }
})
