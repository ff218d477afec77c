import { definePlugin } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits } from '../shared/header-edits.ts'

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
  setup (config) {
    const edit = compileHeaderEdits(config)
    return { onResponse (res) { edit(res.headers) } }
  }
})
