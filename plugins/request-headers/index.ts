import { definePlugin } from '../../src/index.ts'
import { HeaderEditsSchema, compileHeaderEdits } from '../shared/header-edits.ts'

/** Edits the headers sent upstream: remove, rename, set (in that order). */
export default definePlugin({
  name: 'request-headers',
  priority: 800,
  schema: HeaderEditsSchema,
  setup (config) {
    const edit = compileHeaderEdits(config)
    return { onRequest (req) { edit(req.headers) } }
  }
})
